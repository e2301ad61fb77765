"""RADIUS accounting (RFC 2866) as a source of network events, the way a packet gateway (GGSN,
PGW, SMF) reports data sessions.

A UDP listener takes Accounting-Request Start / Interim-Update / Stop, turns each into a
NetworkEvent and hands it to the one ingest path; only once ingest has committed does it answer
with an Accounting-Response, so a gateway that hears nothing retransmits and nothing is lost.
Counters in accounting are cumulative per session and ingest counts only their growth, so a
retransmitted request never counts twice.

Requests whose Request Authenticator does not match the client's secret, requests from a client
not listed (when clients are listed), requests about an IMSI no SIM carries, and requests ingest
cannot store are dropped unanswered and counted in simplane_radius_packets_total.

An Accounting-On/Off ends the open sessions of the gateway that sends it before it is answered;
a Status-Server (RFC 5997) is answered, so that a RADIUS proxy sees the listener up.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import select
import socket
import struct
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Any, Self, cast

from prometheus_client import Counter
from pyrad import packet as radius_packet
from pyrad import tools
from pyrad.dictionary import Dictionary
from sqlalchemy import String

from simplane.core.metrics import REGISTRY
from simplane.core.params import ascii_digits
from simplane.network.events import NetworkEvent
from simplane.network.ingest import gateway_restarted, ingest
from simplane.network.models import DataSession

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

log = logging.getLogger(__name__)

PACKETS = Counter(
    "simplane_radius_packets", "RADIUS accounting packets received, by outcome", ["outcome"],
    registry=REGISTRY,
)
OUTCOMES = ("accepted", "duplicate", "ignored", "status", "bad_authenticator", "unknown_client",
            "unknown_imsi", "malformed", "error")
for _outcome in OUTCOMES:
    PACKETS.labels(_outcome)

KIND = {"Start": "session.started", "Interim-Update": "session.updated",
        "Stop": "session.ended"}
ACCOUNTING_ON_OFF = ("Accounting-On", "Accounting-Off")
STATUS_SERVER = bytes([radius_packet.StatusServer])  # RFC 5997: is the server up?
# The other values of RFC 2866 section 5.1: tunnel accounting (RFC 2867) and Failed. Well formed,
# about nothing ingest records: answered and ignored, like Accounting-On/Off.
IGNORED = ("Tunnel-Start", "Tunnel-Stop", "Tunnel-Reject", "Tunnel-Link-Start",
           "Tunnel-Link-Stop", "Tunnel-Link-Reject", "Failed")

# 3GPP TS 29.061 section 16.4.7.2, 3GPP-RAT-Type
RAT_TYPES = {1: "3G", 2: "2G", 5: "3G", 6: "LTE", 8: "NB-IoT", 9: "LTE-M", 10: "5G"}

def _length(column: str) -> int:
    length = cast(String, DataSession.__table__.c[column].type).length
    assert length is not None  # each is a VARCHAR(n)
    return length


# The longest value each text field of an event may have: that of the column it is stored in.
LENGTHS = {name: _length(column) for name, column in (
    ("session_id", "session_id"), ("imei", "imei"), ("apn", "apn"), ("rat", "radio_link"),
    ("mcc", "operator_mcc"), ("mnc", "operator_mnc"), ("cell_id", "cell_id"), ("lac", "lac"),
    ("ip_address", "ip_address"), ("gateway", "gateway"), ("user_name", "user_name"))}


def dictionary() -> Dictionary:
    """The RADIUS dictionary shipped with simplane: standard accounting and 3GPP attributes."""
    source = resources.files("simplane.network").joinpath("radius.dictionary")
    with resources.as_file(source) as path:
        return Dictionary(str(path))


class Dropped(Exception):
    """A request to drop unanswered, with the outcome to count it under."""

    def __init__(self, outcome: str, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome


# --- attribute decoding --------------------------------------------------------------------

class _Readers(dict):
    """Attribute name → (its key in a packet, the decoder of its raw values) in one dictionary,
    made on first use; None for the attributes that pyrad's own `get` must decode (tagged,
    encrypted, TLVs, unknown)."""

    def __init__(self, dictionary: Dictionary) -> None:
        super().__init__()
        self.dictionary = dictionary

    def __missing__(self, name: str) -> tuple[Any, Any] | None:
        attr = self.dictionary.attributes.get(name)
        reader = None
        if (attr is not None and not attr.encrypt and not attr.has_tag
                and not attr.is_sub_attribute and attr.type != "tlv"):
            decode: Callable[[bytes], Any] = functools.partial(tools.DecodeAttr, attr.type)
            if len(attr.values):  # named values, as pyrad's Packet decodes them
                named, plain = attr.values, decode

                def decode(raw: bytes) -> Any:
                    return named.GetBackward(raw) if named.HasBackward(raw) else plain(raw)
            reader = (self.dictionary.attrindex.GetForward(name), decode)
        self[name] = reader
        return reader


_readers_of: weakref.WeakKeyDictionary[Dictionary, _Readers] = weakref.WeakKeyDictionary()
_last_readers: _Readers | None = None  # the listeners share one dictionary: usually that one's
_raw_values = OrderedDict.get  # a pyrad Packet is an OrderedDict: attribute key → raw values


def _readers(dictionary: Dictionary) -> _Readers:
    global _last_readers
    readers = _last_readers
    if readers is None or readers.dictionary is not dictionary:
        readers = _readers_of.get(dictionary)
        if readers is None:
            readers = _readers_of[dictionary] = _Readers(dictionary)
        _last_readers = readers
    return readers


def _first(pkt: radius_packet.Packet, name: str) -> Any:
    """The first value of attribute `name` in a received packet as pyrad decodes it
    (`pkt[name][0]`), or None. pyrad keeps a packet as the raw values of each attribute by its
    key; those of a plain attribute are decoded here only when present, with the dictionary's
    named values and pyrad's decoder for its type (`Packet.get` goes through a KeyError for
    every attribute missing, and looks the attribute up in the dictionary again each time)."""
    found = _readers(pkt.dict)[name]
    if found is None:
        values = pkt.get(name)
        return values[0] if values else None
    raw = _raw_values(pkt, found[0])
    return found[1](raw[0]) if raw else None


def _counter(pkt: radius_packet.Packet, octets: str, gigawords: str) -> int:
    return (_first(pkt, gigawords) or 0) * 2**32 + (_first(pkt, octets) or 0)


def _text(pkt: radius_packet.Packet, name: str) -> str | None:
    """A text attribute, without surrounding whitespace nor the NULs that end C strings. One
    with a NUL inside is malformed: no column can hold it (PostgreSQL text cannot), and cut at
    the NUL it would be another value."""
    value = _first(pkt, name)
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = value.strip().strip("\x00")
    if "\x00" in value:
        raise Dropped("malformed", f"{name} has a NUL byte inside")
    return value or None


def luhn_digit(digits: str) -> str:
    """The Luhn check digit to append to `digits`."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # these get doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def imei_from_imeisv(value: str | None) -> str | None:
    """IMEI (14 digits and Luhn check digit) from an IMEISV (14 digits and two of software
    version); anything else is kept as given."""
    if not value:
        return None
    if len(value) == 16 and ascii_digits(value):
        return value[:14] + luhn_digit(value[:14])
    return value


def rat_type(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        if not value:
            return None
        code = value[0] if len(value) == 1 else int.from_bytes(value, "big")
    else:
        code = int(value)
    return RAT_TYPES.get(code)


def _plmn(data: bytes) -> tuple[str, str]:
    """MCC and MNC from three octets of TBCD (3GPP TS 24.008 section 10.5.1.3)."""
    mcc = f"{data[0] & 0x0F}{data[0] >> 4}{data[1] & 0x0F}"
    mnc3 = data[1] >> 4
    mnc = f"{data[2] & 0x0F}{data[2] >> 4}" + ("" if mnc3 == 0x0F else str(mnc3))
    return mcc, mnc


def user_location(data: bytes | None) -> dict[str, str]:
    """mcc, mnc, lac and cell_id from 3GPP-User-Location-Info (3GPP TS 29.061 section
    16.4.7.2, TS 29.274 section 8.21), as far as it is decodable."""
    if not data or len(data) < 2:
        return {}
    kind, body = data[0], data[1:]
    try:
        if kind in (0, 1, 2) and len(body) >= 7:  # CGI, SAI, RAI: PLMN, LAC, CI / SAC / RAC
            mcc, mnc = _plmn(body)
            out = {"mcc": mcc, "mnc": mnc, "lac": str(int.from_bytes(body[3:5], "big"))}
            if kind in (0, 1):
                out["cell_id"] = str(int.from_bytes(body[5:7], "big"))
            return out
        if kind == 128 and len(body) >= 5:  # TAI: PLMN, TAC
            mcc, mnc = _plmn(body)
            return {"mcc": mcc, "mnc": mnc, "lac": str(int.from_bytes(body[3:5], "big"))}
        if kind == 129 and len(body) >= 7:  # ECGI: PLMN, 4 bits spare and 28 of ECI
            mcc, mnc = _plmn(body)
            return {"mcc": mcc, "mnc": mnc,
                    "cell_id": str(int.from_bytes(body[3:7], "big") & 0x0FFFFFFF)}
        if kind == 130 and len(body) >= 12:  # TAI and ECGI
            mcc, mnc = _plmn(body)
            return {"mcc": mcc, "mnc": mnc, "lac": str(int.from_bytes(body[3:5], "big")),
                    "cell_id": str(int.from_bytes(body[8:12], "big") & 0x0FFFFFFF)}
    except (IndexError, ValueError):
        return {}
    return {}


def to_event(pkt: radius_packet.Packet, now: datetime) -> NetworkEvent | None:
    """The NetworkEvent an Accounting-Request reports; None for Accounting-On/Off and the other
    statuses about no session (IGNORED)."""
    status = _first(pkt, "Acct-Status-Type")
    if status in ACCOUNTING_ON_OFF or status in IGNORED:
        return None
    if status not in KIND:
        raise Dropped("malformed", f"Acct-Status-Type {status!r} is not handled")
    session_id = _text(pkt, "Acct-Session-Id")
    if not session_id:
        raise Dropped("malformed", "no Acct-Session-Id")
    imsi = imsi_of(pkt)
    when = _when(pkt, now)
    location = user_location(_first(pkt, "3GPP-User-Location-Info"))
    mcc, mnc = serving_network(pkt, location)
    ip = _first(pkt, "Framed-IP-Address")
    event = NetworkEvent(
        kind=KIND[status], imsi=imsi, time=when, session_id=session_id,
        imei=imei_from_imeisv(_text(pkt, "3GPP-IMEISV")),
        apn=_text(pkt, "Called-Station-Id"),
        rat=rat_type(_first(pkt, "3GPP-RAT-Type")), mcc=mcc, mnc=mnc,
        cell_id=location.get("cell_id"), lac=location.get("lac"),
        ip_address=str(ip) if ip else None,
        bytes_up=_counter(pkt, "Acct-Input-Octets", "Acct-Input-Gigawords"),
        bytes_down=_counter(pkt, "Acct-Output-Octets", "Acct-Output-Gigawords"),
        packets_up=_first(pkt, "Acct-Input-Packets") or 0,
        packets_down=_first(pkt, "Acct-Output-Packets") or 0,
        gateway=gateway_of(pkt), user_name=_text(pkt, "User-Name"),
    )
    for name, length in LENGTHS.items():
        value = getattr(event, name)
        if value is not None and len(value) > length:
            raise Dropped("malformed", f"{name} is longer than {length} characters")
    return event


def imsi_of(pkt: radius_packet.Packet) -> str:
    """The IMSI a request is about: its 3GPP-IMSI, else a User-Name that is one."""
    imsi = _text(pkt, "3GPP-IMSI")
    if not imsi:
        user = _text(pkt, "User-Name")
        imsi = user if user and ascii_digits(user) and 6 <= len(user) <= 15 else None
    if not imsi:
        raise Dropped("malformed", "no 3GPP-IMSI (nor an IMSI as User-Name)")
    return imsi


def serving_network(pkt: radius_packet.Packet, location: dict[str, str]
                    ) -> tuple[str | None, str | None]:
    """MCC and MNC of the network serving the device: 3GPP-SGSN-MCC-MNC, else its location."""
    serving = _text(pkt, "3GPP-SGSN-MCC-MNC")
    if serving and ascii_digits(serving) and len(serving) in (5, 6):
        return serving[:3], serving[3:]
    return location.get("mcc"), location.get("mnc")


def restart_of(pkt: radius_packet.Packet, now: datetime) -> tuple[str, datetime] | None:
    """(gateway, when) for an Accounting-On or -Off: the gateway restarted or stops, and the
    sessions it carried are over. None for other packets, and for a gateway that names itself
    neither by NAS-Identifier nor by address (or by a name too long to be a session's)."""
    gateway = gateway_of(pkt)
    if (_first(pkt, "Acct-Status-Type") not in ACCOUNTING_ON_OFF or not gateway
            or len(gateway) > LENGTHS["gateway"]):
        return None
    return gateway, _when(pkt, now)


def gateway_of(pkt: radius_packet.Packet) -> str | None:
    """The packet gateway, as it names itself (RFC 2866 asks for one of these in every
    Accounting-Request)."""
    found = (_text(pkt, "NAS-Identifier") or _first(pkt, "NAS-IP-Address")
             or _first(pkt, "NAS-IPv6-Address"))
    return str(found) if found else None


def _when(pkt: radius_packet.Packet, now: datetime) -> datetime:
    stamp = _first(pkt, "Event-Timestamp")
    if isinstance(stamp, int) and stamp > 0:
        return datetime.fromtimestamp(stamp, UTC)
    # Arrival less the time the gateway has been trying to send it (RFC 2866 section 5.2).
    return now - timedelta(seconds=_first(pkt, "Acct-Delay-Time") or 0)


def _attributes_fit(raw: bytes) -> bool:
    """Whether the attributes of a packet (up to its Length) end where it does: pyrad keeps an
    attribute whose length runs past the end, cut short (RFC 2865 section 5: a packet with an
    attribute of invalid length is silently discarded)."""
    at = 20
    while at + 2 <= len(raw) and raw[at + 1] >= 2:
        at += raw[at + 1]
    return at == len(raw)


# --- the listener --------------------------------------------------------------------------

class Clients:
    """The RADIUS clients (packet gateways) and their shared secrets. With `clients` (address or
    network → its shared secret), only those, each with its own secret, as RFC 2865 has it;
    without, every client shares `secret`."""

    def __init__(self, secret: str | bytes | None, clients: dict[str, str] | None = None
                 ) -> None:
        self.secret = secret.encode() if isinstance(secret, str) else secret
        self.clients = [(ipaddress.ip_network(network, strict=False), key.encode())
                        for network, key in (clients or {}).items()]
        if self.secret is None and not self.clients:
            raise ValueError("a shared secret, or clients with theirs, is needed")

    def secret_of(self, address: str) -> bytes | None:
        """The shared secret of the client at this address; None for no client."""
        if not self.clients:
            return self.secret
        ip = ipaddress.ip_address(address.removeprefix("::ffff:"))  # IPv4 on an IPv6 socket
        return next((key for network, key in self.clients if ip in network), None)


class RadiusListener:
    """A RADIUS listener on one UDP socket, served by one thread, for the clients given
    (`Clients`): packets from anyone else are dropped (`unknown_client`). It reads what is queued
    on the socket, hands the datagrams to `handle` together and sends the answers it returns;
    replies to requests already answered are kept to answer retransmissions alike."""

    DUPLICATES_KEPT = 4096
    BATCH = 512  # datagrams read off the socket and handled together
    NAME = "radius"
    REQUEST = radius_packet.AccountingRequest  # the code of the requests it serves
    STATUS_REPLY = radius_packet.AccountingResponse  # its answer to a Status-Server

    def __init__(self, runtime: Runtime, secret: str | bytes | None, host: str = "127.0.0.1",
                 port: int = 1813, clients: dict[str, str] | None = None) -> None:
        self.runtime = runtime
        self.clients = Clients(secret, clients)
        self.dict = dictionary()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.setblocking(False)
        self.address = self.sock.getsockname()[:2]
        self._replies: OrderedDict[tuple, bytes] = OrderedDict()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.address[1])

    def start(self) -> Self:
        self._thread = threading.Thread(target=self.serve, name=self.NAME, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self.sock.close()

    def serve(self) -> None:
        while not self._stop.is_set():
            try:
                readable, _, _ = select.select([self.sock], [], [], 0.2)
            except (OSError, ValueError):
                if self._stop.is_set():
                    return
                raise
            if not readable:
                continue
            datagrams: list[tuple[bytes, tuple]] = []
            while len(datagrams) < self.BATCH:  # whatever is queued, without waiting for more
                try:
                    datagrams.append(self.sock.recvfrom(4096))
                except (BlockingIOError, InterruptedError):
                    break
            try:
                answers = self.handle(datagrams)
            except Exception:  # a bug must not stop the listener: the gateways retransmit
                log.exception("radius: cannot handle %d datagrams", len(datagrams))
                PACKETS.labels("error").inc(len(datagrams))
                continue
            for peer, reply in answers:
                try:
                    self.sock.sendto(reply, peer)
                except OSError as exc:
                    log.warning("radius: cannot answer %s: %s", peer, exc)

    def handle(self, datagrams: list[tuple[bytes, tuple]]) -> list[tuple[tuple, bytes]]:
        """The answers to send for a batch of datagrams, as (peer, reply)."""
        raise NotImplementedError

    def _packet(self, kind: type, data: bytes, peer: tuple) -> radius_packet.Packet:
        """The datagram decoded as a packet of this kind with its client's secret, its
        attributes fitting it and its Message-Authenticator (if any) holding."""
        secret = self.clients.secret_of(peer[0])
        if secret is None:
            raise Dropped("unknown_client", "not a client of this server")
        try:
            pkt = kind(packet=data, secret=secret, dict=self.dict)
        except (radius_packet.PacketError, KeyError, IndexError, TypeError, ValueError,
                struct.error) as exc:
            raise Dropped("malformed", f"undecodable: {exc}") from None
        if not _attributes_fit(pkt.raw_packet):
            raise Dropped("malformed", "an attribute runs past the end of the packet")
        if pkt.message_authenticator and not pkt.verify_message_authenticator():
            raise Dropped("bad_authenticator", "the Message-Authenticator does not match")
        return pkt

    def _status(self, data: bytes, peer: tuple) -> bytes:
        """The answer to a Status-Server (RFC 5997), to a client whose Message-Authenticator
        holds: an Accounting-Response on the accounting port, an Access-Accept on the
        authentication port."""
        pkt = self._packet(radius_packet.Packet, data, peer)
        if not pkt.message_authenticator:
            raise Dropped("bad_authenticator", "a Status-Server needs a Message-Authenticator")
        reply = pkt.CreateReply()
        reply.code = self.STATUS_REPLY
        reply.add_message_authenticator()
        return reply.ReplyPacket()

    def secret_of(self, address: str) -> bytes | None:
        """The shared secret of the client at this address; None for no client."""
        return self.clients.secret_of(address)

    def _remember(self, key: tuple, reply: bytes) -> bytes:
        self._replies[key] = reply
        while len(self._replies) > self.DUPLICATES_KEPT:
            self._replies.popitem(last=False)
        return reply


class RadiusServer(RadiusListener):
    """The accounting listener (RFC 2866): Accounting-Requests into the one ingest path."""

    def handle(self, datagrams: list[tuple[bytes, tuple]]) -> list[tuple[tuple, bytes]]:
        """The Accounting-Responses to send for a batch of datagrams, as (peer, reply); the
        others are dropped. Every event of the batch goes to ingest in one transaction, and
        nothing is answered before it commits. If it fails, the events go to ingest one by one,
        and those that fail alone are left unanswered (the gateways retransmit them); copies of
        one datagram in the batch all share the first copy's fate."""
        pending: list[tuple[tuple, tuple, radius_packet.AcctPacket, NetworkEvent | None]] = []
        answers: list[tuple[tuple, bytes]] = []
        seen: dict[tuple, tuple] = {}
        for data, peer in datagrams:
            try:
                if data[:1] == STATUS_SERVER:
                    answers.append((peer, self._status(data, peer)))
                    PACKETS.labels("status").inc()
                    continue
                key, found = self._decode(data, peer)
            except Dropped as exc:
                log.info("radius: dropped a packet from %s (%s): %s", peer[0], exc.outcome, exc)
                PACKETS.labels(exc.outcome).inc()
                continue
            except Exception:  # a bug: this packet goes unanswered, the batch goes on
                log.exception("radius: cannot decode a packet from %s", peer[0])
                PACKETS.labels("error").inc()
                continue
            if isinstance(found, bytes):
                answers.append((peer, found))
                PACKETS.labels("duplicate").inc()
            elif key in seen:  # retransmitted within the batch: answered with the first
                pending.append((peer, key, seen[key][0], None))
            else:
                seen[key] = found
                pending.append((peer, key, *found[:2]))
        events = [(key, event) for _p, key, _pkt, event in pending if event is not None]
        unknown: set[str] = set()
        failed: set[tuple] = set()
        if events:
            try:
                unknown = set(ingest(self.runtime, [event for _k, event in events]).unknown)
            except Exception:
                log.exception("radius: cannot ingest %d packets", len(events))
                unknown, failed = self._ingest_each(events)
        for key, (_pkt, _event, restart) in seen.items():
            if restart:
                try:
                    ended = gateway_restarted(self.runtime, *restart)
                except Exception:
                    log.exception("radius: cannot end the sessions of gateway %s", restart[0])
                    failed.add(key)  # unanswered: the gateway sends it again
                    continue
                log.info("radius: gateway %s restarted: %d sessions ended", restart[0],
                         ended.sessions_ended)
        replies: dict[tuple, bytes] = {}
        for peer, key, pkt, _event in pending:
            if key not in replies:
                event = seen[key][1]  # that of the first copy, which went to ingest
                if key in failed:
                    PACKETS.labels("error").inc()  # unanswered, so the gateway retransmits
                    continue
                if event is not None and event.imsi in unknown:
                    log.info("radius: dropped a packet from %s (unknown_imsi): no SIM has IMSI "
                             "%s", peer[0], event.imsi)
                    PACKETS.labels("unknown_imsi").inc()
                    continue
                replies[key] = self._remember(key, pkt.CreateReply().ReplyPacket())
                PACKETS.labels("accepted" if seen[key][1] is not None else "ignored").inc()
            else:
                PACKETS.labels("duplicate").inc()
            answers.append((peer, replies[key]))
        return answers

    def _ingest_each(self, events: list[tuple[tuple, NetworkEvent]]
                     ) -> tuple[set[str], set[tuple]]:
        """Ingest each event in a transaction of its own (after the batch failed as a whole):
        the IMSIs no SIM has, and the keys of the events that failed."""
        if len(events) == 1:
            return set(), {events[0][0]}
        unknown: set[str] = set()
        failed: set[tuple] = set()
        for key, event in events:
            try:
                unknown.update(ingest(self.runtime, [event]).unknown)
            except Exception:
                log.exception("radius: cannot ingest session %s of IMSI %s", event.session_id,
                              event.imsi)
                failed.add(key)
        return unknown, failed

    def _decode(self, data: bytes, peer: tuple) -> tuple[tuple, bytes | tuple]:
        """The packet's duplicate-detection key, and either the reply already sent for it or
        (the verified packet, its event or None, and for an Accounting-On/Off the restarted
        gateway and when, as `restart_of` gives them)."""
        if len(data) < 20 or data[0] != radius_packet.AccountingRequest:
            raise Dropped("malformed", "not an Accounting-Request")
        key = (peer[0], peer[1], data[1], data[4:20])
        cached = self._replies.get(key)
        if cached is not None:  # a retransmission (RFC 5080 section 2.2.2): the same answer
            return key, cached
        pkt = self._packet(radius_packet.AcctPacket, data, peer)
        if not pkt.VerifyAcctRequest():
            raise Dropped("bad_authenticator", "the Request Authenticator does not match")
        now = self.runtime.clock.now()
        try:
            event = to_event(pkt, now)
        except (TypeError, ValueError) as exc:
            raise Dropped("malformed", str(exc)) from None
        if event is not None:
            # Where the gateway takes Disconnect-Requests: its NAS-IP-Address, else the address
            # its accounting comes from; recorded whether or not this server sends them
            # (`--radius-dae-port`), so that one started with it later can cut the session off.
            nas = _first(pkt, "NAS-IP-Address") or _first(pkt, "NAS-IPv6-Address")
            event = replace(event, disconnect_to=str(nas or peer[0].removeprefix("::ffff:")))
        return key, (pkt, event, None if event else restart_of(pkt, now))
