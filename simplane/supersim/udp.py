"""The IP Commands port: where simplane sends to-SIM datagrams from, and where devices send
their from-SIM datagrams to.

One UDP socket per running simplane, bound on first use to $SIMPLANE_IP_COMMANDS_ADDRESS
(host:port; default 127.0.0.1 on a free port, see `address(runtime)`). The worker's jobs send
and receive on it, so a datagram is handled like any other background work.

A real device's datagrams go to and come from its data session's address. A simulated device's
address (10.64.x.y, as the fleet simulator gives them) is reached the way a packet gateway
reaches it, through a tunnel: its session names its gateway `simulator udp://127.0.0.1:PORT`
(`SimulatedGateway`, run by a live simulation in any process on the machine), and each
datagram travels to that loopback endpoint and back wrapped with the device's address and port
(`wrap`/`unwrap`). Only sessions whose gateway is such a loopback endpoint are tunnelled. The
sessions a simulation left open when it ended (a `--fast` run's) name the gateway `simulator`
(VIRTUAL): nothing runs their devices any more, so the sender hands their datagrams to a virtual
device in process, which answers as the simulator's devices do.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

log = logging.getLogger("simplane.supersim")

MAX_DATAGRAM = 65535
_ports: weakref.WeakKeyDictionary[Runtime, CommandPort] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


class CommandPort:
    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if port:  # a fixed port: every process of `serve --workers` binds it, each taking the
            # datagrams the kernel gives it (per source address) into its own job
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.sock.bind((host, port))
        self.sock.setblocking(False)
        self.address: tuple[str, int] = self.sock.getsockname()

    def send(self, ip: str, port: int, data: bytes, via: tuple[str, int] | None = None) -> None:
        """A datagram to a device's address and port; through the tunnel of a simulated gateway
        when `via` names one."""
        if via is None:
            self.sock.sendto(data, (ip, port))
        else:
            self.sock.sendto(wrap(ip, port, data), via)

    def receive(self, limit: int = 200) -> list[tuple[bytes, tuple[str, int]]]:
        """The datagrams waiting, at most `limit`, without blocking."""
        got: list[tuple[bytes, tuple[str, int]]] = []
        while len(got) < limit:
            try:
                data, source = self.sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # e.g. ICMP port unreachable from an earlier send
                continue
            got.append((data, source[:2]))
        return got

    def close(self) -> None:
        self.sock.close()


def command_port(runtime: Runtime) -> CommandPort:
    with _lock:
        port = _ports.get(runtime)
        if port is None:
            host, _, number = os.environ.get("SIMPLANE_IP_COMMANDS_ADDRESS",
                                             "127.0.0.1:0").rpartition(":")
            port = _ports[runtime] = CommandPort(host or "127.0.0.1", int(number or 0))
            weakref.finalize(runtime, port.close)
            log.info("IP Commands on udp://%s:%d", *port.address)
        return port


def address(runtime: Runtime) -> tuple[str, int]:
    """Where devices send from-SIM IP Commands."""
    return command_port(runtime).address


# --- the tunnel of simulated packet gateways -------------------------------------------------

TUNNEL = "simulator udp://"  # how the sessions a simulated packet gateway carries name it
VIRTUAL = "simulator"  # the gateway of sessions a simulation left open: virtual devices'
_MAGIC = b"SIMPLANE-TUNNEL/1 "


def gateway_name(address: tuple[str, int]) -> str:
    return f"{TUNNEL}{address[0]}:{address[1]}"


def tunnel_endpoint(gateway: str | None) -> tuple[str, int] | None:
    """The loopback endpoint of the simulated packet gateway a session's `gateway` names, or None
    (a real gateway, or an endpoint off loopback: those are never tunnelled to)."""
    if not gateway or not gateway.startswith(TUNNEL):
        return None
    host, _, number = gateway.removeprefix(TUNNEL).rpartition(":")
    try:
        ip, port = ipaddress.ip_address(host), int(number)
    except ValueError:
        return None
    return (str(ip), port) if ip.is_loopback and 0 < port < 65536 else None


def wrap(ip: str, port: int, data: bytes) -> bytes:
    return _MAGIC + f"{ip} {port}\n".encode() + data


def unwrap(datagram: bytes) -> tuple[str, int, bytes] | None:
    """(device address, device port, payload) of a tunnelled datagram, or None."""
    if not datagram.startswith(_MAGIC):
        return None
    head, _, data = datagram[len(_MAGIC):].partition(b"\n")
    ip, _, port = head.decode("ascii", "replace").partition(" ")
    try:
        return str(ipaddress.ip_address(ip)), int(port), data
    except ValueError:
        return None


class SimulatedGateway:
    """The user plane of a simulated packet gateway, on a loopback UDP port of its own: it hands
    each tunnelled datagram to `answer(device_ip, device_port, payload)`, the simulated device
    at that address, and tunnels the device's reply (if any) back to the sender, from the
    device's address and port. `name` is what its sessions give as their gateway."""

    def __init__(self, answer: Callable[[str, int, bytes], bytes | None]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.name = gateway_name(self.sock.getsockname()[:2])
        self._answer = answer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simulated-gateway", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                datagram, sender = self.sock.recvfrom(MAX_DATAGRAM + 64)
            except (TimeoutError, BlockingIOError, InterruptedError):
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            inner = unwrap(datagram)
            if inner is None:
                continue
            ip, port, data = inner
            try:
                reply = self._answer(ip, port, data)
                if reply is not None:
                    self.sock.sendto(wrap(ip, port, reply), sender[:2])
            except Exception:  # one device's trouble never stops the gateway
                log.exception("simulated device %s:%d", ip, port)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()
