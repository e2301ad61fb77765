"""Proxy background jobs: session expiry, and handing proxied messages and calls to the
carrier."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Select, func, select

from simplane.proxy import service
from simplane.proxy.models import ProxyInteraction, ProxySession

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

BATCH = 200


def expire_sessions(runtime: Runtime) -> bool:
    """Close the sessions whose date_expiry or ttl has passed, by the runtime's clock."""
    now = runtime.clock.now()
    if not _any(runtime, select(ProxySession.pk).where(ProxySession.status.in_(service.ACTIVE),
                                                       ProxySession.expires_at <= now)):
        return False
    with runtime.db.write() as db:
        return service.close_expired(db, runtime, now, BATCH) > 0


def expire_sessions_due(runtime: Runtime, now: datetime) -> datetime | None:
    """The first moment after `now` that a session expires."""
    with runtime.db.read() as db:
        return db.scalar(select(func.min(ProxySession.expires_at)).where(
            ProxySession.status.in_(service.ACTIVE), ProxySession.expires_at > now))


def deliver_outbound(runtime: Runtime) -> bool:
    if not _any(runtime, select(ProxyInteraction.pk).where(
            ProxyInteraction.outbound_resource_status.in_(service.PENDING))):
        return False
    with runtime.db.write() as db:
        return service.deliver_pending(db, runtime, BATCH) > 0


def _any(runtime: Runtime, stmt: Select) -> bool:
    """A cheap read first, so that an idle worker never takes the write lock."""
    with runtime.db.read() as db:
        return db.execute(stmt.limit(1)).first() is not None


JOBS = [expire_sessions, deliver_outbound]
NEXT_DUE = [expire_sessions_due]
