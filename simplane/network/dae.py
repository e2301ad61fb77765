"""Dynamic Authorization (RFC 5176): the sender of the Disconnect-Requests owed to packet
gateways (`simplane.network.disconnects`), a job of the worker.

Each pass sends what is due to every gateway at once, from one non-blocking UDP socket per
address family, on the gateways' Dynamic Authorization port (`serve --radius-dae-port`), each
request signed with its gateway's shared secret (`--radius-secret`, `--radius-client`) and
naming the session: User-Name, Acct-Session-Id, Framed-IP-Address, NAS-Identifier (and
NAS-IP-Address), with an Event-Timestamp. The pass then waits briefly
(`Settings.radius_dae_wait`) for the answers; later answers are taken on the next pass.

- A Disconnect-ACK ends the session as the gateway's Stop would, for the request's reason, and
  the request is `acknowledged`. A NAK with Error-Cause 503 (Session Context Not Found) means
  the gateway has no such session: the session ends too, and the request is `gone`.
- Any other NAK, or no answer, leaves the request pending: it is sent again with exponential
  backoff (2 s doubling to 5 minutes) until the retry horizon passes
  (`--radius-dae-retry-horizon`), then it is `failed`. Each attempt and answer is logged and
  counted in `simplane_radius_disconnects_total`, and the request's row keeps its attempts and
  last error.
- A request whose session ended meanwhile (its gateway sent a Stop) is not sent: `ended`.
- Requests held while no server had a DAE port are looked at again first
  (`simplane.network.disconnects.release`): sent if still called for, else `dropped` or `ended`.
- Every gateway has its own window of requests in flight (`WINDOW`): one that does not answer
  holds up only its own requests, and a pass waits for it at most `radius_dae_wait`.

Requests are rows, claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several workers share
them and a restart loses none: what was in flight is sent again when its retry is due.
"""

from __future__ import annotations

import logging
import random
import select
import socket
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from prometheus_client import Counter
from pyrad import packet as radius_packet
from sqlalchemy import func, or_, tuple_
from sqlalchemy import select as sql_select

from simplane.core.metrics import REGISTRY
from simplane.network import disconnects
from simplane.network.disconnects import CARRIED
from simplane.network.ingest import end_sessions
from simplane.network.models import DataSession, Disconnect
from simplane.network.radius import Clients, dictionary

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from simplane.core.runtime import Runtime

log = logging.getLogger(__name__)

DISCONNECTS = Counter(
    "simplane_radius_disconnects", "Disconnect-Requests (RFC 5176) sent and answered, by outcome",
    ["outcome"], registry=REGISTRY,
)
OUTCOMES = ("sent", "acknowledged", "nak", "gone", "no_answer", "ended", "failed", "error")
for _outcome in OUTCOMES:
    DISCONNECTS.labels(_outcome)

WINDOW = 64  # requests in flight to one gateway
BATCH = 500  # requests claimed in one pass
SESSION_NOT_FOUND = 503  # Error-Cause (RFC 5176 section 3.5)
FIRST_RETRY = 2.0  # seconds
LONGEST_RETRY = 300.0


def backoff(attempts: int) -> timedelta:
    """How long to wait for an answer to the attempt-th sending before sending again."""
    return timedelta(seconds=min(FIRST_RETRY * 2 ** (attempts - 1), LONGEST_RETRY)
                     * (1 + random.random() / 4))


@dataclass
class InFlight:
    pk: int
    request: radius_packet.Packet
    until: datetime  # when it is sent again, if unanswered


class Sender:
    """The sockets of one process and the requests they have in flight."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sockets: dict[int, socket.socket] = {}
        self.flights: dict[tuple[str, int], InFlight] = {}  # (address, identifier)
        self.next_id: dict[str, int] = {}
        self.dict = dictionary()

    def socket_for(self, address: str) -> socket.socket:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = self.sockets.get(family)
        if sock is None:
            sock = self.sockets[family] = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
        return sock

    def in_flight(self, address: str, now: datetime) -> int:
        return sum(1 for (to, _i), f in self.flights.items() if to == address and f.until > now)

    def identifier(self, address: str, now: datetime) -> int | None:
        """A RADIUS Identifier for a new request to this gateway: one not in flight."""
        start = self.next_id.get(address, random.randrange(256))
        for step in range(256):
            ident = (start + step) % 256
            flight = self.flights.get((address, ident))
            if flight is None or flight.until <= now:
                self.next_id[address] = (ident + 1) % 256
                return ident
        return None

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()


_senders: weakref.WeakKeyDictionary[Runtime, Sender] = weakref.WeakKeyDictionary()
_senders_lock = threading.Lock()


def sender_for(runtime: Runtime) -> Sender:
    with _senders_lock:
        sender = _senders.get(runtime)
        if sender is None:
            sender = _senders[runtime] = Sender()
        return sender


def clients_of(runtime: Runtime) -> Clients | None:
    settings = runtime.settings
    if settings.radius_secret is None and not settings.radius_clients:
        return None
    return Clients(settings.radius_secret, settings.radius_clients)


def send_disconnects(runtime: Runtime) -> bool:
    """Take the answers that came, send the Disconnect-Requests that are due, and wait briefly
    for their answers; True when there was something to do."""
    sender = sender_for(runtime)
    with sender.lock:
        busy = _take_answers(runtime, sender)
        port = runtime.settings.radius_dae_port
        clients = clients_of(runtime)
        if port is None or clients is None:
            return busy
        busy = bool(disconnects.release(runtime)) or busy  # those held while none were sent
        now = runtime.clock.now()
        due = (Disconnect.status == "pending", Disconnect.next_attempt_at <= now)
        with runtime.db.read() as db:  # a cheap read first: an idle worker takes no lock
            gateways = dict(db.execute(sql_select(Disconnect.address, func.count())
                                       .where(*due).group_by(Disconnect.address)).all())
        if not gateways:
            return busy
        sent: set[tuple[str, int]] = set()
        with runtime.db.write() as db:
            for address in sorted(gateways):
                room = min(WINDOW - sender.in_flight(address, now), BATCH)
                if room > 0:
                    sent |= _send(db, runtime, sender, clients, port, address, room, now)
        if sent:
            _take_answers(runtime, sender, sent, runtime.settings.radius_dae_wait)
        return True


def _send(db: Session, runtime: Runtime, sender: Sender, clients: Clients, port: int,
          address: str, room: int, now: datetime) -> set[tuple[str, int]]:
    """Send up to `room` due requests to the gateway at `address`; returns what is in flight
    for them, as (address, identifier)."""
    rows = list(db.scalars(
        sql_select(Disconnect).where(Disconnect.address == address,
                                     Disconnect.status == "pending",
                                     Disconnect.next_attempt_at <= now)
        .order_by(Disconnect.next_attempt_at, Disconnect.pk).limit(room)
        .with_for_update(skip_locked=True)))
    if not rows:
        return set()
    carried = set(db.execute(sql_select(DataSession.sim_sid, DataSession.session_id).where(
        DataSession.sim_sid.in_({r.sim_sid for r in rows}),
        or_(DataSession.status == "open", DataSession.end_reason.in_(CARRIED)))).all())
    secret = clients.secret_of(address)
    horizon = timedelta(seconds=runtime.settings.radius_dae_retry_horizon)
    sock = sender.socket_for(address)
    sent: set[tuple[str, int]] = set()
    for row in rows:
        if (row.sim_sid, row.session_id) not in carried:
            _finish(row, "ended", now, "its session ended first")
            continue
        if row.attempts and now - row.date_created >= horizon:
            _finish(row, "failed", now, row.last_error or "no answer")
            continue
        if secret is None:
            _finish(row, "failed", now, "no shared secret for this gateway")
            continue
        ident = sender.identifier(address, now)
        if ident is None:
            break
        if row.attempts:
            DISCONNECTS.labels("no_answer").inc()
            row.last_error = row.last_error or "no answer"
        request = _request(sender, row, ident, secret, now)
        row.attempts += 1
        row.next_attempt_at = now + backoff(row.attempts)
        row.date_updated = now
        try:
            sock.sendto(request.RequestPacket(), (address, port))
        except OSError as exc:
            row.last_error = f"cannot send: {exc.strerror or exc}"[:64]
            DISCONNECTS.labels("error").inc()
            log.warning("radius: cannot send a Disconnect-Request to %s: %s", address, exc)
            continue
        sender.flights[(address, ident)] = InFlight(row.pk, request, row.next_attempt_at)
        DISCONNECTS.labels("sent").inc()
        log.info("radius: Disconnect-Request %d to %s for session %s of %s (%s, attempt %d)",
                 ident, address, row.session_id, row.sim_sid, row.reason, row.attempts)
        sent.add((address, ident))
    return sent


def _request(sender: Sender, row: Disconnect, ident: int, secret: bytes,
             now: datetime) -> radius_packet.Packet:
    request = radius_packet.CoAPacket(code=radius_packet.DisconnectRequest, id=ident,
                                      secret=secret, dict=sender.dict)
    if row.user_name:
        request["User-Name"] = row.user_name
    request["Acct-Session-Id"] = row.session_id
    if row.framed_ip and ":" not in row.framed_ip:
        request["Framed-IP-Address"] = row.framed_ip
    if row.nas_identifier:
        request["NAS-Identifier"] = row.nas_identifier
    if ":" not in row.address:
        request["NAS-IP-Address"] = row.address
    request["Event-Timestamp"] = int(now.timestamp())  # RFC 5176 section 3.4: replay protection
    return request


def _finish(row: Disconnect, status: str, now: datetime, error: str | None = None) -> None:
    row.status = status
    row.date_updated = now
    if error is not None and status != "acknowledged":
        row.last_error = error[:64]
    DISCONNECTS.labels(status).inc()
    level = logging.WARNING if status == "failed" else logging.INFO
    log.log(level, "radius: Disconnect-Request for session %s of %s %s%s", row.session_id,
            row.sim_sid, status, f" ({error})" if error else "")


def _take_answers(runtime: Runtime, sender: Sender,
                  expecting: set[tuple[str, int]] | None = None, wait: float = 0) -> bool:
    """Read the answers waiting on the sockets (waiting up to `wait` seconds for those to the
    requests `expecting`, just sent) and apply them; True when there were some."""
    deadline = time.monotonic() + wait
    answers: list[tuple[InFlight, radius_packet.Packet]] = []
    expecting = set(expecting or ())
    while sender.sockets:
        readable, _, _ = select.select(list(sender.sockets.values()), [], [],
                                       max(deadline - time.monotonic(), 0))
        if not readable:
            break
        for sock in readable:
            while True:
                try:
                    data, peer = sock.recvfrom(4096)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:  # e.g. ICMP port unreachable reported on the socket
                    log.info("radius: Disconnect-Request socket: %s", exc)
                    break
                found = _match(sender, data, peer[0].removeprefix("::ffff:"))
                if found is not None:
                    answers.append(found)
                    expecting.discard((peer[0].removeprefix("::ffff:"), data[1]))
        if not expecting or time.monotonic() >= deadline:
            break
    if answers:
        _apply(runtime, answers)
    return bool(answers)


def _match(sender: Sender, data: bytes, address: str
           ) -> tuple[InFlight, radius_packet.Packet] | None:
    """The request in flight that an answer answers, and the answer; None for a datagram that
    answers none of them (or not with the gateway's secret)."""
    if len(data) < 20 or data[0] not in (radius_packet.DisconnectACK,
                                         radius_packet.DisconnectNAK):
        return None
    flight = sender.flights.get((address, data[1]))
    if flight is None:
        return None
    try:
        reply = flight.request.CreateReply(packet=data)
    except (radius_packet.PacketError, KeyError, IndexError, TypeError, ValueError) as exc:
        log.info("radius: undecodable answer from %s: %s", address, exc)
        return None
    if not flight.request.VerifyReply(reply, data):
        log.info("radius: an answer from %s does not match its request's authenticator", address)
        return None
    if reply.message_authenticator and not reply.verify_message_authenticator(
            original_authenticator=flight.request.authenticator,
            original_code=flight.request.code):
        log.info("radius: an answer from %s has a bad Message-Authenticator", address)
        return None
    del sender.flights[(address, data[1])]
    return flight, reply


def _apply(runtime: Runtime, answers: list[tuple[InFlight, radius_packet.Packet]]) -> None:
    now = runtime.clock.now()
    with runtime.db.write() as db:
        rows = {row.pk: row for row in db.scalars(sql_select(Disconnect).where(
            Disconnect.pk.in_({f.pk for f, _r in answers}), Disconnect.status == "pending"))}
        ending: dict[str, list[Disconnect]] = {}
        for flight, reply in answers:
            row = rows.get(flight.pk)
            if row is None:
                continue
            cause = (reply.get("Error-Cause") or [None])[0] if "Error-Cause" in reply else None
            if reply.code == radius_packet.DisconnectACK:
                _finish(row, "acknowledged", now)
            elif cause == SESSION_NOT_FOUND:
                _finish(row, "gone", now, "NAK 503: Session Context Not Found")
            else:
                row.last_error = f"NAK {cause}" if cause else "NAK"
                row.date_updated = now
                DISCONNECTS.labels("nak").inc()
                log.warning("radius: Disconnect-Request for session %s of %s refused (%s): "
                            "sent again at %s", row.session_id, row.sim_sid, row.last_error,
                            row.next_attempt_at.isoformat())
                continue
            ending.setdefault(row.reason, []).append(row)
        db.flush()
        for reason, done in ending.items():
            keys = [(row.sim_sid, row.session_id) for row in done]
            end_sessions(db, tuple_(DataSession.sim_sid, DataSession.session_id).in_(keys),
                         reason, now)
