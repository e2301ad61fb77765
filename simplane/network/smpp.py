"""SMS through an SMSC: an SMPP 3.4 transceiver bind (`serve --smpp HOST:PORT`).

To-SIM SMS commands (Wireless Commands, Super SIM SMS Commands) go to the SMSC as `submit_sm`
to the SIM's MSISDN, a delivery receipt requested; the receipt (a `deliver_sm` naming the
message_id) moves the command to `delivered` or `failed` and fires its callback. A `deliver_sm`
from a SIM's MSISDN is a from-SIM command, posted to its callback as the simulated devices' are.

The command tables are the queue: a to-SIM command is `queued` until the SMSC accepted it, and
the same transaction that moves it to `sent` stores the SMSC's message_id. So an SMSC outage or
a restart only delays commands: on a new bind, whatever is still queued is submitted again.

Delivery guarantees, where a PDU can be lost:
- A `submit_sm` whose response has not come when the connection drops is submitted again on
  the next bind (the SMSC took no responsibility for it until it answered). Every answer the
  SMSC sent before it closed the connection is read and stored first, so an SMSC that goes
  away causes no duplicate; one whose answer was lost in the network (a connection that died
  with it in flight) is sent twice, as in the crash window below.
- The crash window: the SMSC answered `submit_sm_resp`, but the process died before the
  transaction that stores the message_id committed. The command is still `queued` and is
  submitted again after the restart: at least once, never lost. At most the window of
  outstanding PDUs can be sent twice, and only on a crash (a stop waits for the answers and
  commits them). The alternative, committing "submitting" before the send and failing what a
  crash left so, would lose commands silently; a duplicate is visible, and a device can drop
  it by the command's SID (a Wireless Command's `IncludeSid`).
- A `deliver_sm` (receipt or mobile-originated) is answered only after its transaction
  committed: an SMSC that gets no answer delivers it again. A receipt applied twice changes
  nothing (status moves are conditional); a mobile-originated message whose answer was lost
  after the commit becomes a second from-SIM command.

Throttling: `ESME_RTHROTTLED` (or `ESME_RMSGQFUL`) in a `submit_sm_resp` pauses submission
for `throttle_pause` seconds; the command is submitted again. Other refusals fail the command.
One process per database binds: the role `smpp` (`core/leases.py`, `serving.py`); another
`serve --smpp` on the database waits as a standby and binds when the holder dies.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge
from smpplib import consts, exceptions, smpp
from smpplib.client import Client
from smpplib.gsm import GSM_CHARACTER_TABLE, gsm_encode
from sqlalchemy import select as sql_select
from sqlalchemy.orm import Session

from simplane.core.metrics import REGISTRY
from simplane.supersim import service as supersim_service
from simplane.supersim.access import CONNECTED
from simplane.supersim.models import Sim as SuperSim
from simplane.supersim.models import SmsCommand
from simplane.wireless import service as wireless_service
from simplane.wireless.models import Command, RatePlan, Sim

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

log = logging.getLogger("simplane.smpp")

SUBMITS = Counter("simplane_smpp_submits", "submit_sm answered by the SMSC, by outcome "
                  "(accepted, throttled, refused)", ["outcome"], registry=REGISTRY)
DELIVERS = Counter("simplane_smpp_delivers", "deliver_sm from the SMSC, by kind (receipt, "
                   "mobile_originated, refused: from a number no SIM has)", ["kind"],
                   registry=REGISTRY)
BINDS = Counter("simplane_smpp_binds", "Transceiver binds to the SMSC", registry=REGISTRY)
BOUND = Gauge("simplane_smpp_bound", "1 while bound to the SMSC", registry=REGISTRY)

GSM_DEFAULT, BINARY, UCS2 = 0x00, 0x04, 0x08
SHORT_MESSAGE_MAX = {GSM_DEFAULT: 160, BINARY: 140, UCS2: 140}  # octets in one submit_sm
RECEIPT_TYPE = 0x04  # esm_class: SMSC delivery receipt
TRANSIENT = {consts.SMPP_ESME_RTHROTTLED, consts.SMPP_ESME_RMSGQFUL}
# message_state (SMPP 3.4 §5.2.28): final states of a receipt.
DELIVERED, FAILED_STATES = 2, {3, 4, 5, 7, 8}
RECEIPT_STATS = {"DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5, "ACCEPTD": 6,
                 "UNKNOWN": 7, "REJECTD": 8, "ENROUTE": 1}


@dataclass
class Batch:
    """What one read of the SMSC's PDUs asks to write: per kind of command, pk → message_id."""

    accepted: dict[str, dict[int, str | None]] = field(
        default_factory=lambda: {"wireless": {}, "supersim": {}})
    refused: dict[str, dict[int, str | None]] = field(
        default_factory=lambda: {"wireless": {}, "supersim": {}})
    receipts: dict[str, bool] = field(default_factory=dict)  # message_id → delivered


class LinkDown(Exception):
    """The bind is gone (closed, silent or refused): reconnect."""


@dataclass(frozen=True)
class Outgoing:
    """A to-SIM command as it goes to the SMSC."""

    kind: str  # "wireless" or "supersim"
    pk: int
    msisdn: str
    data_coding: int
    message: bytes
    receipt: bool


def encode_text(text: str) -> tuple[int, bytes]:
    """GSM 03.38 default alphabet (one octet a septet, as SMPP carries it) when every character
    has a place in it, else UCS-2."""
    try:
        return GSM_DEFAULT, gsm_encode(text)
    except UnicodeError:
        return UCS2, text.encode("utf-16-be")


def decode(data_coding: int, message: bytes) -> tuple[str, str]:
    """A mobile-originated message as (text or base64, mode): binary for 8-bit data."""
    scheme = data_coding
    if data_coding & 0xF0 == 0xF0:  # a message class given: bit 2 says 8-bit data
        scheme = BINARY if data_coding & 0x04 else GSM_DEFAULT
    if scheme in (0x02, BINARY):
        return base64.b64encode(message).decode(), "binary"
    if scheme == UCS2:
        return message.decode("utf-16-be", errors="replace"), "text"
    if scheme == 0x03:
        return message.decode("latin-1"), "text"
    if scheme == 0x01:
        return message.decode("ascii", errors="replace"), "text"
    return gsm_decode(message), "text"


def gsm_decode(message: bytes) -> str:
    chars, escape = [], False
    for octet in message:
        if octet == 0x1B and not escape:
            escape = True
            continue
        index = octet + 0x80 if escape else octet
        escape = False
        char = GSM_CHARACTER_TABLE[index] if index < len(GSM_CHARACTER_TABLE) else "?"
        chars.append("?" if char == "`" else char)  # "`" fills the table's unused places
    return "".join(chars)


def parse_receipt(pdu: Any) -> tuple[str, int] | None:
    """(message_id, message_state) of a delivery receipt, from its TLVs or its text."""
    message_id = _text(getattr(pdu, "receipted_message_id", None))
    state = getattr(pdu, "message_state", None)
    body = bytes(pdu.short_message or getattr(pdu, "message_payload", None) or b"")
    found = re.search(rb"id:(\S+).*?stat:(\w+)", body, re.IGNORECASE | re.DOTALL)
    if found:
        message_id = message_id or found.group(1).decode("ascii", "replace")
        state = state or RECEIPT_STATS.get(found.group(2).decode("ascii", "replace").upper(), 7)
    if not message_id or state is None:
        return None
    return message_id, int(state)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").rstrip("\0")
    return value or ""


class SmppLink:
    """One transceiver bind to an SMSC, kept by one thread: it submits queued to-SIM SMS
    commands (at most `window` unanswered at once), applies what the SMSC delivers, keeps the
    bind alive with enquire_link, and binds again with backoff when it is lost."""

    def __init__(self, runtime: Runtime, host: str, port: int, system_id: str, password: str,
                 source_addr: str = "", window: int = 64, enquire_interval: float = 30.0,
                 response_timeout: float = 10.0, throttle_pause: float = 1.0,
                 backoff: tuple[float, float] = (0.5, 30.0), poll: float = 0.25) -> None:
        self.runtime = runtime
        self.host, self.port = host, port
        self.system_id, self.password, self.source_addr = system_id, password, source_addr
        self.window = window
        self.enquire_interval, self.response_timeout = enquire_interval, response_timeout
        self.throttle_pause, self.backoff, self.poll = throttle_pause, backoff, poll
        self.bound = threading.Event()
        self.binds = 0  # successful binds so far
        self.throttled = 0  # submit_sm answered ESME_RTHROTTLED / ESME_RMSGQFUL
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> SmppLink:
        self.runtime.worker.add([self._nudge])  # a command was queued: look now
        self._thread = threading.Thread(target=self._run, name="smpp", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop submitting, wait (up to `timeout`) for the SMSC's answers to what was
        submitted and store them, unbind."""
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)
        with contextlib.suppress(ValueError):
            self.runtime.worker.jobs.remove(self._nudge)

    def wake(self) -> None:
        self._wake.set()

    def _nudge(self, runtime: Runtime) -> bool:
        self._wake.set()
        return False

    def _run(self) -> None:
        delay = self.backoff[0]
        while not self._stop.is_set():
            client = Client(self.host, self.port, timeout=self.response_timeout,
                            allow_unknown_opt_params=True,
                            logger_name="simplane.smpp.client")
            try:
                client.connect()
                client.bind_transceiver(system_id=self.system_id, password=self.password,
                                        system_type="", interface_version=0x34)
                self.binds += 1
                self.bound.set()
                BINDS.inc()
                BOUND.set(1)
                delay = self.backoff[0]
                log.info("bound to the SMSC", extra={"fields": {"smsc": f"{self.host}:{self.port}"}})
                _Session(self, client).run()
            except (LinkDown, exceptions.ConnectionError, exceptions.PDUError, OSError) as exc:
                log.warning("SMSC link down: %s; binding again in %.1fs", exc or type(exc).__name__,
                            delay)
            except Exception:
                log.exception("SMSC link failed; binding again")
            finally:
                self.bound.clear()
                BOUND.set(0)
                with contextlib.suppress(OSError):
                    client.disconnect()
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, self.backoff[1])

    # --- the queue -----------------------------------------------------------------------------

    def due(self, limit: int, busy: set[tuple[str, int]]) -> list[Outgoing]:
        """Queued to-SIM SMS commands the SMSC can take now (their SIM may receive SMS and has
        an MSISDN), oldest first, without those already on their way (`busy`)."""
        wireless_busy = [pk for kind, pk in busy if kind == "wireless"]
        supersim_busy = [pk for kind, pk in busy if kind == "supersim"]
        with self.runtime.db.read() as db:
            wireless = db.execute(
                sql_select(Command.pk, Command.command, Command.command_mode,
                           Command.delivery_receipt_requested, Sim.msisdn)
                .join(Sim, Sim.sid == Command.sim_sid)
                .join(RatePlan, RatePlan.pk == Sim.rate_plan_pk)
                .where(Command.status == "queued", Command.direction == "to_sim",
                       Command.transport == "sms", Command.smsc_message_id.is_(None),
                       Command.pk.not_in(wireless_busy),
                       Sim.status.in_(wireless_service.CAN_TAKE_COMMANDS),
                       RatePlan.messaging_enabled.is_(True), Sim.msisdn.is_not(None))
                .order_by(Command.pk).limit(limit)).all()
            supersim = db.execute(
                sql_select(SmsCommand.pk, SmsCommand.payload, SuperSim.msisdn)
                .join(SuperSim, SuperSim.sid == SmsCommand.sim_sid)
                .where(SmsCommand.status == "queued", SmsCommand.direction == "to_sim",
                       SmsCommand.smsc_message_id.is_(None), SmsCommand.pk.not_in(supersim_busy),
                       SuperSim.status.in_(CONNECTED), SuperSim.msisdn.is_not(None))
                .order_by(SmsCommand.pk).limit(limit)).all()
        out = []
        for pk, body, mode, receipt, msisdn in wireless:
            if mode == "binary":
                coding, message = BINARY, base64.b64decode(body)
            else:
                coding, message = encode_text(body)
            out.append(Outgoing("wireless", pk, msisdn or "", coding, message, receipt))
        for pk, payload, msisdn in supersim:
            coding, message = encode_text(payload)
            out.append(Outgoing("supersim", pk, msisdn or "", coding, message, True))
        return out

    def submit_pdu(self, client: Client, item: Outgoing) -> Any:
        fields: dict[str, Any] = {}
        if len(item.message) > SHORT_MESSAGE_MAX[item.data_coding]:
            fields["message_payload"] = item.message  # the SMSC splits it
        else:
            fields["short_message"] = item.message
        return smpp.make_pdu(
            "submit_sm", client=client, service_type="",
            source_addr_ton=1 if self.source_addr.isdigit() else 5 if self.source_addr else 0,
            source_addr_npi=1 if self.source_addr.isdigit() else 0,
            source_addr=self.source_addr, dest_addr_ton=1, dest_addr_npi=1,
            destination_addr=item.msisdn, esm_class=0, protocol_id=0, priority_flag=0,
            registered_delivery=1 if item.receipt else 0, replace_if_present_flag=0,
            data_coding=item.data_coding, sm_default_msg_id=0, **fields)

    # --- what the SMSC says, in one transaction ------------------------------------------------

    def apply(self, db: Session, batch: Batch) -> None:
        """What a batch of PDUs said, in set-wise writes: accepted commands are `sent` with
        their message_id (final for a Wireless Command without a receipt asked for), refused
        ones `failed`, receipts finish `sent` ones."""
        runtime, moves = self.runtime, {"wireless": wireless_service.move_commands,
                                        "supersim": supersim_service.move_sms_commands}
        for kind, move in moves.items():
            move(db, runtime, batch.accepted[kind], "queued", "sent")
            move(db, runtime, batch.refused[kind], "queued", "failed")
        if not batch.receipts:
            return
        ids = sorted(batch.receipts)
        for kind, model in (("wireless", Command), ("supersim", SmsCommand)):
            found = db.execute(sql_select(model.pk, model.smsc_message_id).where(
                model.smsc_message_id.in_(ids), model.status == "sent")).all()
            for delivered in (True, False):
                moves[kind](db, runtime, {pk: None for pk, message_id in found
                                          if batch.receipts.get(message_id or "") == delivered},
                            "sent", "delivered" if delivered else "failed")

    def mobile_originated(self, db: Session, pdu: Any) -> int:
        """A message from a SIM's MSISDN: a from-SIM command. Returns the deliver_sm_resp's
        status (ESME_RINVSRCADR for a number no SIM has)."""
        msisdn = _text(pdu.source_addr).removeprefix("+")
        message = bytes(pdu.short_message or getattr(pdu, "message_payload", None) or b"")
        if pdu.esm_class and pdu.esm_class & 0x40 and message:  # a user data header: skip it
            message = message[1 + message[0]:]
        body, mode = decode(pdu.data_coding or 0, message)
        sim = db.scalar(sql_select(Sim).where(Sim.msisdn == msisdn))
        if sim is not None:
            wireless_service.receive_from_sim(db, self.runtime, sim, body, mode)
            return consts.SMPP_ESME_ROK
        super_sim = db.scalar(sql_select(SuperSim).where(SuperSim.msisdn == msisdn,
                                                         SuperSim.account_sid.is_not(None)))
        if super_sim is not None:
            text = body if mode == "text" else message.decode("utf-8", errors="replace")
            supersim_service.receive_sms(db, self.runtime, super_sim, text)
            return consts.SMPP_ESME_ROK
        log.warning("a message from %s, which no SIM has, was refused", msisdn)
        return consts.SMPP_ESME_RINVSRCADR


class _Session:
    """One bind: the window of outstanding submit_sm, keep-alive, and what comes in."""

    def __init__(self, link: SmppLink, client: Client) -> None:
        self.link, self.client = link, client
        self.outstanding: dict[int, tuple[Outgoing, float]] = {}  # sequence → command, sent at
        self.pending: deque[Outgoing] = deque()
        self.paused_until = 0.0
        self.last_heard = time.monotonic()
        self.enquiry: tuple[int, float] | None = None
        self.next_look = 0.0

    def run(self) -> None:
        link = self.link
        sock = self.client._socket
        assert sock is not None
        while True:
            now = time.monotonic()
            stopping = link._stop.is_set()
            if stopping and not self.outstanding:
                self._unbind()
                return
            if not stopping and now >= self.paused_until:
                self._submit(now)
            wait = 0.0 if self.pending and now >= self.paused_until else (
                min(link.poll, max(0.0, self.paused_until - now)) if self.paused_until > now
                else link.poll)
            if select.select([sock], [], [], wait)[0]:
                self._read(sock)
            self._keep_alive(time.monotonic())

    def _submit(self, now: float) -> None:
        link = self.link
        if not self.pending and (now >= self.next_look or link._wake.is_set()):
            link._wake.clear()
            busy = {(item.kind, item.pk) for item, _ in self.outstanding.values()}
            found = link.due(link.window * 4, busy)
            self.pending.extend(found)
            self.next_look = now if found else now + link.poll
        self._send_pending(now, link.window)

    def _send_pending(self, now: float, window: int) -> None:
        if now < self.paused_until:
            return
        while self.pending and len(self.outstanding) < window:
            item = self.pending.popleft()
            pdu = self.link.submit_pdu(self.client, item)
            self._send(pdu)
            self.outstanding[pdu.sequence] = (item, now)

    def _read(self, sock: socket.socket) -> None:
        """Every PDU waiting, applied in one transaction; deliver_sm answered after it
        committed."""
        pdus: list[Any] = []
        closed: Exception | None = None
        unbound = False
        try:  # what came before the SMSC closed the connection still counts
            pdus.append(self.client.read_pdu())
            while len(pdus) < 512 and select.select([sock], [], [], 0)[0]:
                pdus.append(self.client.read_pdu())
        except exceptions.ConnectionError as exc:
            closed = exc
        self.last_heard = time.monotonic()
        # The window the answers free is used at once, from what was already looked up, so
        # that the SMSC works while this batch is written.
        answered = sum(1 for pdu in pdus if pdu.command == "submit_sm_resp"
                       and pdu.sequence in self.outstanding)
        lost: LinkDown | None = None
        if closed is None and not self.link._stop.is_set():
            try:
                self._send_pending(time.monotonic(), self.link.window + answered)
            except LinkDown as exc:  # the batch read still counts
                lost = exc
        answers: list[Any] = []
        batch = Batch()
        with self.link.runtime.db.write() as db:
            for pdu in pdus:
                unbound |= self._apply(db, pdu, answers, batch)
            self.link.apply(db, batch)
        if closed is not None:
            raise LinkDown("the SMSC closed the connection") from closed
        if lost is not None:
            raise lost
        for answer in answers:
            self._send(answer)
        if unbound:
            raise LinkDown("the SMSC unbound")

    def _apply(self, db: Session, pdu: Any, answers: list[Any], batch: Batch) -> bool:
        link, command = self.link, pdu.command
        if command == "submit_sm_resp":
            entry = self.outstanding.pop(pdu.sequence, None)
            if entry is None:
                return False
            item = entry[0]
            if pdu.status == consts.SMPP_ESME_ROK:
                SUBMITS.labels("accepted").inc()
                batch.accepted[item.kind][item.pk] = _text(pdu.message_id)
            elif pdu.status in TRANSIENT:
                SUBMITS.labels("throttled").inc()
                link.throttled += 1
                self.paused_until = time.monotonic() + link.throttle_pause
                self.pending.clear()  # looked up again, in order, once the pause is over
            else:
                SUBMITS.labels("refused").inc()
                log.warning("the SMSC refused a command: %s",
                            consts.DESCRIPTIONS.get(pdu.status, f"status {pdu.status:#x}"))
                batch.refused[item.kind][item.pk] = None
        elif command == "deliver_sm":
            status = consts.SMPP_ESME_ROK
            receipt = (pdu.esm_class or 0) & 0x3C == RECEIPT_TYPE and parse_receipt(pdu)
            if receipt:
                DELIVERS.labels("receipt").inc()
                message_id, state = receipt
                if state == DELIVERED or state in FAILED_STATES:  # else en route: not final yet
                    batch.receipts[message_id] = state == DELIVERED
            elif (pdu.esm_class or 0) & 0x3C == 0:
                status = link.mobile_originated(db, pdu)
                DELIVERS.labels("mobile_originated" if status == consts.SMPP_ESME_ROK
                                else "refused").inc()
            answer = smpp.make_pdu("deliver_sm_resp", client=self.client, status=status)
            answer.sequence = pdu.sequence
            answers.append(answer)
        elif command == "enquire_link":
            answer = smpp.make_pdu("enquire_link_resp", client=self.client)
            answer.sequence = pdu.sequence
            answers.append(answer)
        elif command == "enquire_link_resp":
            self.enquiry = None
        elif command == "generic_nack":
            entry = self.outstanding.pop(pdu.sequence, None)
            if entry is not None:  # not understood: submitted again after a pause
                self.paused_until = time.monotonic() + link.throttle_pause
                self.pending.clear()
        elif command == "unbind":
            answer = smpp.make_pdu("unbind_resp", client=self.client)
            answer.sequence = pdu.sequence
            answers.append(answer)
            return True
        return False

    def _keep_alive(self, now: float) -> None:
        link = self.link
        if self.enquiry is not None and now - self.enquiry[1] > link.response_timeout:
            raise LinkDown("no answer to enquire_link")
        oldest = min((sent for _, sent in self.outstanding.values()), default=now)
        if now - oldest > link.response_timeout:
            raise LinkDown(f"no answer to submit_sm in {link.response_timeout:.0f}s")
        if self.enquiry is None and now - self.last_heard > link.enquire_interval:
            pdu = smpp.make_pdu("enquire_link", client=self.client)
            self._send(pdu)
            self.enquiry = (pdu.sequence, now)
            self.last_heard = now

    def _salvage(self) -> None:
        """The connection broke: answers the SMSC sent before it closed may still wait in the
        socket. Apply them, so that what it accepted is not submitted again."""
        sock = self.client._socket
        pdus: list[Any] = []
        with contextlib.suppress(exceptions.ConnectionError, OSError, exceptions.PDUError):
            sock.settimeout(0.5)
            while select.select([sock], [], [], 0.5)[0]:
                pdus.append(self.client.read_pdu())
        if pdus:
            batch = Batch()
            with self.link.runtime.db.write() as db:
                for pdu in pdus:
                    if pdu.command == "submit_sm_resp":
                        self._apply(db, pdu, [], batch)
                self.link.apply(db, batch)

    def _send(self, pdu: Any) -> None:
        try:
            self.client.send_pdu(pdu)
        except exceptions.ConnectionError as exc:
            self._salvage()
            raise LinkDown("the connection was lost") from exc

    def _unbind(self) -> None:
        with contextlib.suppress(exceptions.ConnectionError, exceptions.PDUError, OSError):
            self.client.unbind()
