"""Delivery: from the outbox to every subscribed sink, at least once, in order.

Each sink has a cursor into the outbox. A dispatcher leases a sink that has events past its
cursor (FOR UPDATE SKIP LOCKED on PostgreSQL, so several processes share the sinks and never
work on the same one), reads the next events in outbox order, keeps those its subscriptions ask
for, sends them as one batch and only then moves the cursor, in one conditional UPDATE. A crash
anywhere in between loses nothing: the batch is sent again (receivers deduplicate on the event
id). Order is total per sink, hence per SIM: publication order on SQLite; on PostgreSQL the
order the publishing transactions took their ids, which is publication order unless two
transactions that overlap in time publish for the same SIM.

A failed send (5xx, 4xx, timeout, refused connection) leaves the cursor where it is and retries
the sink with exponential backoff and jitter, or after the Retry-After the sink asked for. A sink
that keeps failing for the retry horizon (4 h by default, as Twilio's) is marked `failed`; its
backlog stays in the outbox and is delivered once the sink is validated again.

Leases are measured on the wall clock (they are about processes being alive, not about the
simulated time of the fleet); a lease held by a process of this host that no longer exists is
taken over at once, so a dispatcher restarted after kill -9 resumes immediately.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import and_, exists, func, or_, select, update

from simplane.core.callbacks import account_token
from simplane.core.db import changed
from simplane.core.leases import dead_here, owner
from simplane.events import catalogue, metrics, sinks
from simplane.events.models import EventSink, EventSubscribedEvent, EventSubscription, OutboxEvent
from simplane.events.outbox import (
    Position,
    after,
    event_time,
    last_visible,
    read_after,
    visible_bound,
)
from simplane.events.service import configuration
from simplane.events.sinks import Outgoing, Result, failure

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

log = logging.getLogger("simplane.events")

LEASE_SECONDS = 30.0
# A sink is released after this many batches or this much time, whichever comes first, and a
# round of the job ends after TURN_SECONDS, so that other sinks, other dispatchers and the
# worker's other jobs get their turn even when a sink is slow.
BATCHES_PER_LEASE = 50
TURN_SECONDS = 1.0
BACKOFF_CAP = 600.0


def lease_free(lease_owner: str | None, lease_until: float | None, now: float) -> bool:
    """A sink's lease may be taken: nobody holds it, it ran out, or its holder's process on this
    host died (kill -9, crash), so nobody is delivering."""
    return lease_owner is None or lease_until is None or lease_until < now \
        or dead_here(lease_owner)


def dispatch(runtime: Runtime) -> bool:
    """The worker job: deliver what is due to every sink; True when something was sent."""
    busy = False
    deadline = time.monotonic() + TURN_SECONDS
    for candidate in _due(runtime):  # one at a time, so that other dispatchers get their share
        if time.monotonic() > deadline:
            return True  # more is due: the worker comes back at once
        if _claim(runtime, candidate):
            try:
                busy = _work(runtime, candidate, deadline) or busy
            finally:
                _release(runtime, candidate)
    return busy


def _due(runtime: Runtime) -> list[int]:
    """Sinks with something to send now: a pending test event, or events past the cursor."""
    now, wall = runtime.clock.now(), time.time()
    with runtime.db.read() as db:
        pending = select(OutboxEvent.pk).where(
            OutboxEvent.account_sid == EventSink.account_sid,
            after(db, (EventSink.cursor_txid, EventSink.cursor_pk)))
        bound = visible_bound(db)
        if bound is not None:
            pending = pending.where(bound)
        rows = db.execute(
            select(EventSink.pk, EventSink.lease_owner, EventSink.lease_until)
            .where(EventSink.next_attempt_at <= now,
                   or_(EventSink.test_pending,
                       and_(EventSink.status == "active", exists(pending))))
            .order_by(EventSink.next_attempt_at)).all()
    return [r.pk for r in rows if lease_free(r.lease_owner, r.lease_until, wall)]


def dispatch_due(runtime: Runtime, now: datetime) -> datetime | None:
    """The first moment after `now` that a sink is to be retried."""
    with runtime.db.read() as db:
        return db.scalar(select(func.min(EventSink.next_attempt_at)).where(
            or_(EventSink.status == "active", EventSink.test_pending),
            EventSink.next_attempt_at > now))


def _claim(runtime: Runtime, sink_pk: int) -> bool:
    """Lease a sink to this process, unless another holds it (or is locking it right now)."""
    wall = time.time()
    with runtime.db.write() as db:
        row = db.execute(
            select(EventSink.lease_owner, EventSink.lease_until)
            .where(EventSink.pk == sink_pk).with_for_update(skip_locked=True)).first()
        if row is None or not lease_free(row.lease_owner, row.lease_until, wall):
            return False
        db.execute(update(EventSink).where(EventSink.pk == sink_pk)
                   .values(lease_owner=owner(), lease_until=wall + LEASE_SECONDS))
    return True


def _release(runtime: Runtime, sink_pk: int) -> None:
    with runtime.db.write() as db:
        db.execute(update(EventSink).where(EventSink.pk == sink_pk,
                                           EventSink.lease_owner == owner())
                   .values(lease_owner=None, lease_until=None))


@dataclass
class Batch:
    events: list[Outgoing]
    positions: list[Position]  # of each event
    end: Position  # the cursor once the batch is delivered
    full: bool  # a whole batch came back: more may follow at once
    published_at: list[float]


def _work(runtime: Runtime, sink_pk: int, deadline: float) -> bool:
    """One pass over a leased sink; then its backlog gauge is set, from one bounded count
    (whether the pass delivered, failed or found nothing to send)."""
    sent, sink = _deliver(runtime, sink_pk, deadline)
    if sink is not None:
        with runtime.db.read() as db:
            metrics.backlog(sink, backlog(db, sink))
    return sent


def _deliver(runtime: Runtime, sink_pk: int, deadline: float) -> tuple[bool, EventSink | None]:
    """Send what is due to a leased sink: whether something was sent, and the sink as last
    read (its cursor kept up to date), or None once it is gone or its lease lost."""
    sent, sink = False, None
    for _ in range(BATCHES_PER_LEASE):
        if sent and time.monotonic() > deadline:
            return sent, sink
        with runtime.db.read() as db:
            sink = db.get(EventSink, sink_pk)
            if sink is None or sink.lease_owner != owner():
                return sent, None
            db.expunge(sink)
            token = account_token(db, runtime, sink.account_sid)
            config = configuration(runtime.box, sink)
            batch = None if sink.test_pending or sink.status != "active" else _next(
                db, runtime, sink, config)
        if sink.test_pending:
            test = test_event(runtime, sink)
            result = _send(runtime, sink, config, [test], token)
            _finish(runtime, sink, result, None, test_id=test.event["data"]["test_id"])
            if not result.ok:
                return sent, sink
            sent = True
            continue
        if batch is None:
            return sent, sink
        if not batch.events:
            _advance(runtime, sink, batch.end)
            if not batch.full:
                return sent, sink
            continue
        result = _send(runtime, sink, config, batch.events, token)
        _finish(runtime, sink, result, batch)
        sent = True
        if not result.ok or not batch.full:
            return sent, sink
    return sent, sink


def _send(runtime: Runtime, sink: EventSink, config: dict[str, Any], events: list[Outgoing],
          token: str) -> Result:
    try:
        return sinks.module(sink.sink_type).send(runtime, config, events, token)
    except Exception as exc:  # a bug or an unexpected library error must not lose the batch
        log.exception("delivery failed", extra={"fields": {"sink_sid": sink.sid}})
        return failure(exc)


def _subscribed(db: Any, sink: EventSink) -> dict[str, tuple[int, Position]]:
    """type → (schema version, position it was subscribed at) for a sink's subscriptions."""
    found: dict[str, tuple[int, Position]] = {}
    for row in db.execute(
            select(EventSubscribedEvent.type, EventSubscribedEvent.schema_version,
                   EventSubscribedEvent.since_txid, EventSubscribedEvent.since_pk)
            .join(EventSubscription, EventSubscription.pk == EventSubscribedEvent.subscription_pk)
            .where(EventSubscription.sink_pk == sink.pk)):
        since = (row.since_txid, row.since_pk)
        if row.type in found:  # several subscriptions: the newest version, the earliest start
            version, earlier = found[row.type]
            found[row.type] = (max(version, row.schema_version), min(since, earlier))
        else:
            found[row.type] = (row.schema_version, since)
    return found


def _next(db: Any, runtime: Runtime, sink: EventSink, config: dict[str, Any]) -> Batch:
    subscribed = _subscribed(db, sink)
    limit = sinks.module(sink.sink_type).batch_limit(config, runtime.settings)
    cursor = (sink.cursor_txid, sink.cursor_pk)
    # First where the account's committed events end, then the subscribed ones up to there:
    # when fewer than a batch come back, the cursor may move to that end (nothing before it
    # can still appear), so that other types and other accounts' events are skipped in SQL.
    end = last_visible(db, sink.account_sid)
    rows = read_after(db, cursor, limit, sink.account_sid, types=subscribed, until=end) \
        if subscribed and end > cursor else []
    batch = Batch([], [], max(end, cursor), len(rows) == limit, [])
    for row in rows:
        here = (row.txid, row.pk)
        version, since = subscribed[row.type]
        if here <= since:
            continue
        batch.events.append(Outgoing(cloudevent(row, version), row.subject))
        batch.positions.append(here)
        batch.published_at.append(row.published_at)
    if batch.full:
        batch.end = (rows[-1].txid, rows[-1].pk)
    return batch


def cloudevent(row: Any, schema_version: int | None = None) -> dict[str, Any]:
    """A CloudEvents 1.0 structured-mode event, the way Twilio delivers it."""
    data = orjson.loads(row.data)
    kind = catalogue.event_type(row.type)
    dataschema = None
    source = f"/v1/Events/{row.id}"
    if kind is not None:
        version = (catalogue.version(kind.schema_id, schema_version) if schema_version
                   else None) or catalogue.latest(kind.schema_id)
        data = catalogue.project(kind.schema_id, version.version, data)
        dataschema = version.dataschema
        source = kind.source.format(id=row.id)
    return {"specversion": "1.0", "type": row.type, "source": source, "id": row.id,
            "dataschema": dataschema, "datacontenttype": "application/json", "time": row.time,
            "data": data}


def test_event(runtime: Runtime, sink: EventSink) -> Outgoing:
    """The event POST /Sinks/{Sid}/Test sends: its id is the account SID, as Twilio's is."""
    version = catalogue.latest("EventStreams.TestSink")
    return Outgoing({
        "specversion": "1.0", "type": catalogue.TEST_EVENT, "source": "Sink",
        "id": sink.account_sid, "dataschema": version.dataschema,
        "datacontenttype": "application/json", "time": event_time(runtime.clock.now()),
        "data": {"test_id": sink.test_id},
    }, None)


def _advance(runtime: Runtime, sink: EventSink, end: Position) -> None:
    with runtime.db.write() as db:
        db.execute(update(EventSink).where(EventSink.pk == sink.pk,
                                           EventSink.lease_owner == owner())
                   .values(cursor_txid=end[0], cursor_pk=end[1],
                           lease_until=time.time() + LEASE_SECONDS))
    sink.cursor_txid, sink.cursor_pk = end


def _finish(runtime: Runtime, sink: EventSink, result: Result, batch: Batch | None,
            test_id: str | None = None) -> None:
    """Record the outcome of one send (of a batch, or of the test event carrying `test_id`):
    move the cursor past what was delivered, or schedule the retry (and mark the sink failed
    past the retry horizon).

    A /Test posted since the sink was read (it gave the sink a new test_id) wins over this
    outcome: its test event is sent next, so the sink's test and retry state stay as /Test
    left them; a failure neither marks the sink failed nor puts the retry off."""
    now = runtime.clock.now()
    values: dict[str, Any] = {"lease_until": time.time() + LEASE_SECONDS}
    if batch is not None and result.delivered:
        end = batch.end if result.ok else batch.positions[result.delivered - 1]
        values.update(cursor_txid=end[0], cursor_pk=end[1])
        metrics.delivered(sink, batch.published_at[:result.delivered])
        if log.isEnabledFor(logging.DEBUG):
            log.debug("delivered", extra={"fields": {
                "sink_sid": sink.sid, "events": result.delivered, "owner": owner(),
                "ids": [e.event["id"] for e in batch.events[:result.delivered]]}})
    if result.ok:
        values.update(attempts=0, failing_since=None, last_error=None)
        if test_id is not None:
            values["test_pending"] = False
        kept: tuple[str, ...] = ("test_pending",)  # as a /Test posted meanwhile left them
    else:
        failing_since = sink.failing_since or now
        attempts = sink.attempts + 1
        delay = result.retry_after
        if delay is None:
            delay = min(2.0 ** (attempts - 1), BACKOFF_CAP) * (0.5 + random.random())
        delay = min(delay, runtime.settings.events_retry_horizon)
        values.update(attempts=attempts, failing_since=failing_since,
                      last_error=result.error, next_attempt_at=now + timedelta(seconds=delay))
        if (now - failing_since).total_seconds() >= runtime.settings.events_retry_horizon:
            values.update(status="failed", test_pending=False)
        kept = ("test_pending", "status", "attempts", "failing_since", "next_attempt_at")
    leased = and_(EventSink.pk == sink.pk, EventSink.lease_owner == owner())
    with runtime.db.write() as db:
        written = changed(db.execute(
            update(EventSink).where(leased, EventSink.test_id.is_not_distinct_from(sink.test_id))
            .values(**values).execution_options(synchronize_session=False)))
        if not written:  # a /Test was posted meanwhile (or the lease is lost: nothing matches)
            values = {name: value for name, value in values.items() if name not in kept}
            db.execute(update(EventSink).where(leased).values(**values)
                       .execution_options(synchronize_session=False))
    if not result.ok:
        pending = len(batch.events) - result.delivered if batch else 1
        if values.get("status") == "failed":
            metrics.failed(sink, pending)
            log.warning("sink failed", extra={"fields": {"sink_sid": sink.sid,
                                                         "error": result.error}})
        else:
            metrics.retried(sink, pending)
    for name in ("cursor_txid", "cursor_pk", "attempts", "failing_since"):
        if name in values:
            setattr(sink, name, values[name])


def backlog(db: Any, sink: EventSink, cap: int = 100_000) -> int:
    """Events past a sink's cursor (of every type; at most `cap` are counted)."""
    inner = (select(OutboxEvent.pk)
             .where(OutboxEvent.account_sid == sink.account_sid,
                    after(db, (sink.cursor_txid, sink.cursor_pk))).limit(cap).subquery())
    return int(db.scalar(select(func.count()).select_from(inner)))
