"""An SMSC on loopback for the SMPP tests, built on the `smpp.pdu` codec (smpppdu: the PDU
library of the Twisted SMPP client and Jasmin), independent of the smpplib client simplane binds
with. It accepts transceiver binds, answers submit_sm with message ids, sends delivery receipts
and mobile-originated messages, and can throttle or drop the connection on demand."""

from __future__ import annotations

import contextlib
import io
import itertools
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smpp.pdu import operations as op
from smpp.pdu import pdu_types as t
from smpp.pdu.pdu_encoding import DataCodingEncoder, PDUEncoder

STATES = {"DELIVRD": t.MessageState.DELIVERED, "UNDELIV": t.MessageState.UNDELIVERABLE,
          "EXPIRED": t.MessageState.EXPIRED, "REJECTD": t.MessageState.REJECTED}


@dataclass
class Submitted:
    message_id: str
    destination: str
    data_coding: int
    message: bytes  # short_message, or message_payload
    receipt: bool
    at: float = 0.0  # when it came (time.monotonic())
    in_payload: bool = False  # carried in message_payload rather than short_message


class Smsc:
    def __init__(self, system_id: str = "simplane", password: str = "secret",
                 receipts: str | None = "DELIVRD") -> None:
        self.system_id, self.password = system_id, password
        self.receipts = receipts  # sent for every accepted submit_sm asking for one
        self.submitted: list[Submitted] = []  # accepted, in order
        self.throttled: list[tuple[bytes, float]] = []  # message, when ESME_RTHROTTLED was sent
        self.throttle = 0  # answer so many next submit_sm with ESME_RTHROTTLED
        self.drop_every: int | None = None  # close the connection after so many accepted…
        self.drops_left = 0  # …so many times
        self.drops = 0
        self.unanswered: dict[int, Any] = {}  # deliver_sm not answered yet: sent again on a bind
        self.binds = 0
        self.enquiries = 0  # enquire_link received
        self.bind_attempts = 0
        self.connections = 0
        self.silent = False  # answer nothing (an SMSC that hangs)
        self.answers: dict[int, int] = {}  # deliver_sm sequence → the ESME's status
        self.changed = threading.Condition()
        self._ids = itertools.count(1000)
        self._seq = itertools.count(1)
        self._conn: socket.socket | None = None
        self._write = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    # --- what a test drives ------------------------------------------------------------------

    def wait_for(self, check: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Wait (bounded) until check() is true; returns it."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not (found := check()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("the SMSC never saw what the test waited for")
                self.changed.wait(min(left, 0.05))
        return found

    def mobile_originated(self, source: str, message: bytes,
                          coding: t.DataCodingDefault = t.DataCodingDefault.SMSC_DEFAULT_ALPHABET
                          ) -> int:
        """Deliver a message from `source`; returns its sequence number (see `answers`)."""
        seq = next(self._seq)
        self._deliver_sm(op.DeliverSM(seq, **self._deliver(source, t.EsmClassType.DEFAULT, coding),
                                      short_message=message))
        return seq

    def drop(self) -> None:
        """Close the connection, as an SMSC that goes away does."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):  # already gone
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def close(self) -> None:
        self.drop()
        self._listener.close()

    # --- the SMSC ----------------------------------------------------------------------------

    def _deliver(self, source: str, kind: t.EsmClassType, coding: t.DataCodingDefault
                 ) -> dict[str, Any]:
        return dict(
            service_type=None, source_addr_ton=t.AddrTon.INTERNATIONAL,
            source_addr_npi=t.AddrNpi.ISDN, source_addr=source,
            dest_addr_ton=t.AddrTon.UNKNOWN, dest_addr_npi=t.AddrNpi.UNKNOWN,
            destination_addr="", esm_class=t.EsmClass(t.EsmClassMode.DEFAULT, kind),
            protocol_id=0, priority_flag=t.PriorityFlag.LEVEL_0,
            registered_delivery=t.RegisteredDelivery(
                t.RegisteredDeliveryReceipt.NO_SMSC_DELIVERY_RECEIPT_REQUESTED),
            replace_if_present_flag=t.ReplaceIfPresentFlag.DO_NOT_REPLACE,
            data_coding=t.DataCoding(scheme_data=coding))

    def receipt(self, submitted: Submitted, stat: str) -> None:
        text = (f"id:{submitted.message_id} sub:001 dlvrd:001 submit date:2601011200 "
                f"done date:2601011200 stat:{stat} err:000 text:").encode()
        self._deliver_sm(op.DeliverSM(
            next(self._seq), **self._deliver(submitted.destination,
                                             t.EsmClassType.SMSC_DELIVERY_RECEIPT,
                                             t.DataCodingDefault.SMSC_DEFAULT_ALPHABET),
            short_message=text, receipted_message_id=submitted.message_id,
            message_state=STATES[stat]))

    def _deliver_sm(self, pdu: Any) -> None:
        with self.changed:
            self.unanswered[pdu.sequence_number] = pdu
        self._send(pdu)

    def _send(self, pdu: Any) -> None:
        with self._write:
            if self._conn is not None:
                self._conn.sendall(PDUEncoder().encode(pdu))

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._conn = conn
            with self.changed:
                self.connections += 1
                self.changed.notify_all()
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> Any:
        head = self._exact(conn, 4)
        if head is None:
            return None
        body = self._exact(conn, struct.unpack(">L", head)[0] - 4)
        return None if body is None else PDUEncoder().decode(io.BytesIO(head + body))

    @staticmethod
    def _exact(conn: socket.socket, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            try:
                part = conn.recv(size - len(data))
            except OSError:
                return None
            if not part:
                return None
            data += part
        return data

    def _serve(self, conn: socket.socket) -> None:
        while (pdu := self._read(conn)) is not None:
            with self.changed:
                self._handle(conn, pdu)
                self.changed.notify_all()

    def _handle(self, conn: socket.socket, pdu: Any) -> None:
        command, seq = pdu.command_id, pdu.sequence_number
        if command == t.CommandId.enquire_link:
            self.enquiries += 1
        if self.silent:
            return
        if command == t.CommandId.bind_transceiver:
            ok = (pdu.params["system_id"] == self.system_id
                  and pdu.params["password"] == self.password)
            self.binds += ok
            self.bind_attempts += 1
            self._send(op.BindTransceiverResp(
                seq, status=t.CommandStatus.ESME_ROK if ok else t.CommandStatus.ESME_RBINDFAIL,
                system_id="smsc"))
            for pdu in list(self.unanswered.values()):  # what the last bind did not answer
                self._send(pdu)
        elif command == t.CommandId.submit_sm:
            if self.throttle:
                self.throttle -= 1
                self.throttled.append((pdu.params.get("short_message") or b"", time.monotonic()))
                self._send(op.SubmitSMResp(seq, status=t.CommandStatus.ESME_RTHROTTLED))
                return
            params = pdu.params
            item = Submitted(str(next(self._ids)), params["destination_addr"],
                             DataCodingEncoder().encode(params["data_coding"])[0],
                             params.get("short_message") or params.get("message_payload") or b"",
                             params["registered_delivery"].receipt
                             != t.RegisteredDeliveryReceipt.NO_SMSC_DELIVERY_RECEIPT_REQUESTED,
                             time.monotonic(), not params.get("short_message"))
            self.submitted.append(item)
            self._send(op.SubmitSMResp(seq, message_id=item.message_id))
            if item.receipt and self.receipts:
                self.receipt(item, self.receipts)
            if self.drops_left and self.drop_every and len(self.submitted) % self.drop_every == 0:
                self.drops_left -= 1
                self.drops += 1
                self.drop()
        elif command == t.CommandId.enquire_link:
            self._send(op.EnquireLinkResp(seq))
        elif command == t.CommandId.unbind:
            self._send(op.UnbindResp(seq))
        elif command == t.CommandId.deliver_sm_resp:
            self.unanswered.pop(seq, None)
            self.answers[seq] = pdu.status
