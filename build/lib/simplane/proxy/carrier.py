"""The carrier side of Proxy: what actually sends a proxied message or places a proxied call.

`Carrier` is the interface; `SimulatedCarrier`, the built-in one, delivers at once and keeps
everything it sent in the outbox (`proxy_outbox`), so users and tests see exactly what each
participant received and from which number. A real carrier would implement the same two calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from simplane.core.clock import iso
from simplane.proxy.models import ProxyOutbox


@dataclass
class Outbound:
    """One outbound message or call leg, from a proxy number to a participant's real one."""

    sid: str  # SM… or CA…
    account_sid: str
    from_number: str
    to_number: str
    body: str | None = None
    media_urls: list[str] | None = None
    service_sid: str | None = None
    session_sid: str | None = None
    interaction_sid: str | None = None


class Carrier(Protocol):
    def send_message(self, db: Session, message: Outbound, now: datetime) -> str:
        """Send a message; returns its status (e.g. delivered, undelivered, failed)."""

    def place_call(self, db: Session, call: Outbound, now: datetime) -> str:
        """Place a call; returns its status (e.g. in-progress once answered, busy, failed)."""


class SimulatedCarrier:
    """Every message is delivered and every call answered; all of it lands in the outbox."""

    def send_message(self, db: Session, message: Outbound, now: datetime) -> str:
        return self._record(db, "message", message, "delivered", now)

    def place_call(self, db: Session, call: Outbound, now: datetime) -> str:
        return self._record(db, "call", call, "in-progress", now)

    @staticmethod
    def _record(db: Session, kind: str, item: Outbound, status: str, now: datetime) -> str:
        db.add(ProxyOutbox(
            sid=item.sid, account_sid=item.account_sid, kind=kind, from_number=item.from_number,
            to_number=item.to_number, body=item.body, media_urls=item.media_urls or None,
            status=status, service_sid=item.service_sid, session_sid=item.session_sid,
            interaction_sid=item.interaction_sid, date_created=now))
        return status


carrier: Carrier = SimulatedCarrier()


def use(replacement: Carrier) -> None:
    """Route outbound traffic through another carrier."""
    global carrier
    carrier = replacement


def outbox(db: Session, account_sid: str | None = None, to: str | None = None,
           limit: int = 50) -> list[ProxyOutbox]:
    """What was delivered, newest first; optionally only one account's, or only to one number."""
    stmt = select(ProxyOutbox)
    if account_sid:
        stmt = stmt.where(ProxyOutbox.account_sid == account_sid)
    if to:
        stmt = stmt.where(ProxyOutbox.to_number == to)
    return list(db.scalars(stmt.order_by(ProxyOutbox.pk.desc()).limit(limit)))


def outbox_json(row: ProxyOutbox) -> dict:
    return {
        "sid": row.sid, "account_sid": row.account_sid, "kind": row.kind,
        "from": row.from_number, "to": row.to_number, "body": row.body,
        "media_urls": row.media_urls or [], "status": row.status,
        "service_sid": row.service_sid, "session_sid": row.session_sid,
        "interaction_sid": row.interaction_sid, "date_created": iso(row.date_created),
    }
