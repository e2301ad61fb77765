"""Where the server's own HTTP requests may go: the outbound policy, and the HTTP clients that
hold every request to it.

Tenants give URLs (callbacks, webhook sinks, Proxy's intercept and out-of-session callbacks)
that the server then requests itself. Public addresses are always allowed; anything else only
when the operator names it in `SIMPLANE_OUTBOUND_ALLOW` (or `serve --outbound-allow`): CIDRs,
host names, and the words `loopback`, `private` (RFC 1918, CGNAT 100.64.0.0/10, ULA
fc00::/7), `any` and `none` (nothing besides public addresses). Link-local and unspecified
addresses, multicast and broadcast are reached only when a CIDR names them.

The check is made where the connection is made: the host is resolved, each address is
checked, and the socket connects to that very address, so a name that resolves differently
the second time (DNS rebinding) gains nothing. IPv4-mapped, NAT64 and 6to4 IPv6 addresses are
judged by the IPv4 address they carry. The clients follow no redirects, as Twilio's webhooks do
not, and ignore proxy settings from the environment.
"""

from __future__ import annotations

import ipaddress
import socket
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

REFUSED = "address not allowed"  # the one error a refused request gives, whatever the port
WORDS = ("loopback", "private", "any", "none")
PRIVATE = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class NotAllowed(httpx.ConnectError):
    """The policy refused every address the host has."""

    def __init__(self) -> None:
        super().__init__(REFUSED)


@dataclass(frozen=True)
class Policy:
    loopback: bool = False
    private: bool = False
    any: bool = False
    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> Policy:
        """A policy from its comma-separated form; ValueError names what is not understood."""
        words: set[str] = set()
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for item in (i.strip() for i in text.split(",")):
            if not item:
                continue
            low = item.lower()
            if low in WORDS:
                words.add(low)
            elif "/" in item or _ip(item) is not None:
                try:
                    networks.append(ipaddress.ip_network(item, strict=False))
                except ValueError:
                    raise ValueError(f"{item!r} is not a CIDR") from None
            elif _host_name(low):
                hosts.add(low.rstrip("."))
            else:
                raise ValueError(f"{item!r} is not a CIDR, a host name or one of "
                                 f"{', '.join(WORDS)}")
        if "none" in words and len(words) > 1:
            raise ValueError("'none' cannot be combined with other words")
        return cls(loopback="loopback" in words, private="private" in words, any="any" in words,
                   networks=tuple(networks), hosts=frozenset(hosts))

    def allows(self, address: IPAddress, host: str | None = None) -> bool:
        """Whether a connection to `address` (found for `host`, when it was a name) is
        allowed."""
        if any(address in n for n in self.networks if n.version == address.version):
            return True
        inner = embedded_ipv4(address)
        if inner is not None:
            return self.allows(inner, host)
        if address.is_link_local or address.is_unspecified or address.is_multicast or (
                address == ipaddress.IPv4Address("255.255.255.255")):
            return False
        if self.any or (host is not None and host.lower().rstrip(".") in self.hosts):
            return True
        if address.is_loopback:
            return self.loopback
        if any(address in n for n in PRIVATE if n.version == address.version):
            return self.private
        return address.is_global

    def check_literal(self, url: str) -> bool:
        """False when the URL's host is an IP address the policy refuses (host names are
        checked when a request is sent)."""
        host = urlsplit(url).hostname
        address = _ip(host) if host else None
        return address is None or self.allows(address)


def default_allow(listen_host: str) -> str:
    """`loopback` when the server listens on loopback addresses only, else `none`."""
    try:
        infos = socket.getaddrinfo(listen_host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return "none"
    addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    return "loopback" if addresses and all(a.is_loopback for a in addresses) else "none"


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches: IPv4-mapped, NAT64 (64:ff9b::/96) or 6to4."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _ip(text: str) -> IPAddress | None:
    """An IP address written in any form a resolver takes as one: also `127.1`, `2130706433`
    or `0x7f.1`, which inet_aton reads as 127.0.0.1."""
    text = text.strip("[]").split("%")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if text and all(c in "0123456789abcdefxABCDEFX." for c in text) and (
            text.rstrip(".").rsplit(".", 1)[-1][:1].isdigit()):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text.rstrip(".")))
        except OSError:
            return None
    return None


def _host_name(text: str) -> bool:
    labels = text.rstrip(".").split(".")
    return all(label and len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum()
               and label.isascii() for label in labels)


def _addresses(policy: Policy, host: str, infos: Iterable[tuple[typing.Any, ...]]) -> list[str]:
    allowed = []
    for info in infos:
        text = str(info[4][0]).split("%")[0]
        if policy.allows(ipaddress.ip_address(text), host) and text not in allowed:
            allowed.append(text)
    if not allowed:
        raise NotAllowed()
    return allowed


class _Backend(httpcore.NetworkBackend):
    """Connects only to addresses the policy allows, by address."""

    def __init__(self, policy: Callable[[], Policy]) -> None:
        self._policy = policy
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None
                    ) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise httpcore.ConnectError("no answer") from None
        error: Exception = NotAllowed()
        for address in _addresses(self._policy(), host, infos):
            try:
                return self._inner.connect_tcp(address, port, timeout, local_address,
                                               socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error


class _AsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, policy: Callable[[], Policy]) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int,
                          timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
                          local_address: str | None = None,
                          socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise httpcore.ConnectError("no answer") from None
        error: Exception = NotAllowed()
        for address in _addresses(self._policy(), host, infos):
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address,
                                                     socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Transport(httpx.HTTPTransport):
    def __init__(self, policy: Callable[[], Policy]) -> None:
        super().__init__(trust_env=False)
        # The transport's own pool, with the backend that checks every connection.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False), max_connections=100,
            max_keepalive_connections=20, keepalive_expiry=5.0,
            network_backend=_Backend(policy))


class _AsyncTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: Callable[[], Policy]) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False), max_connections=None,
            max_keepalive_connections=20, keepalive_expiry=5.0,
            network_backend=_AsyncBackend(policy))


def client(policy: Callable[[], Policy], timeout: float) -> httpx.Client:
    """An HTTP client whose every connection the policy allowed."""
    return httpx.Client(transport=_Transport(policy), timeout=timeout, follow_redirects=False,
                        trust_env=False)


def async_client(policy: Callable[[], Policy], timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=_AsyncTransport(policy), timeout=timeout,
                             follow_redirects=False, trust_env=False)


def failure_text(exc: httpx.HTTPError) -> str:
    """What a failed request is recorded as: one text for a refused address whatever its
    port's state, and one for any allowed address that gave no answer, refused, timed out or
    broke off (never whether a port is closed, filtered or open)."""
    return REFUSED if isinstance(exc, NotAllowed) else "no answer"
