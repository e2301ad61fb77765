"""How long the outbox keeps events: a week after publication, and always until every sink of
the account that has subscriptions has them (a failed sink's backlog is kept however old it is;
a sink without subscriptions is owed nothing)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlalchemy import delete, exists, select, tuple_

from simplane.core.db import changed
from simplane.events.models import EventSink, EventSubscription, OutboxEvent

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

KEEP_SECONDS = 7 * 24 * 3600
BATCH = 5000
EVERY_SECONDS = 60.0

_last_run = 0.0


def prune(runtime: Runtime, now: float | None = None) -> int:
    """Delete up to BATCH events that are old enough and that every subscribed sink of their
    account has passed; returns how many."""
    cutoff = (now if now is not None else time.time()) - KEEP_SECONDS
    owed = exists().where(
        EventSink.account_sid == OutboxEvent.account_sid,
        EventSink.pk.in_(select(EventSubscription.sink_pk)),
        tuple_(EventSink.cursor_txid, EventSink.cursor_pk)
        < tuple_(OutboxEvent.txid, OutboxEvent.pk))
    with runtime.db.read() as db:
        pks = list(db.scalars(select(OutboxEvent.pk)
                              .where(OutboxEvent.published_at < cutoff, ~owed)
                              .order_by(OutboxEvent.pk).limit(BATCH)))
    if not pks:
        return 0
    with runtime.db.write() as db:  # a sink created meanwhile starts after these: still safe
        return changed(db.execute(delete(OutboxEvent).where(OutboxEvent.pk.in_(pks))))


def prune_job(runtime: Runtime) -> bool:
    """The worker job: prune at most once a minute (wall clock)."""
    global _last_run
    if time.monotonic() - _last_run < EVERY_SECONDS:
        return False
    _last_run = time.monotonic()
    return prune(runtime) == BATCH
