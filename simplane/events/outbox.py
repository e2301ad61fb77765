"""The producer API: events are written to a durable outbox in the caller's transaction.

    from simplane.events import outbox

    outbox.publish(db, account_sid, "com.twilio.iot.supersim.connection.data-session.started",
                   data, subject=sim_sid, time=when)
    outbox.publish_many(db, [
        {"account_sid": ..., "type": ..., "data": {...}, "subject": sim_sid, "time": when},
        ...
    ])

- `db` is the caller's SQLAlchemy Session: the event commits (or rolls back) with the state
  change that caused it, so no event is ever owed for a change that did not happen, nor missing
  for one that did.
- `subject` is the ordering key (the SIM SID): each sink receives one subject's events in the
  order they were published.
- `time` (a datetime, default now) is when the event happened: the CloudEvents `time`.
- `id` (optional) is the CloudEvents `id`, the key receivers deduplicate on; by default the
  data's `event_sid` when it has one (Super SIM connection events do, as a copy of `ce_id`),
  else a new `EZ` SID.
- Both return the ids of the events written. `publish_many` is one executemany: one row per
  event, whatever the number of sinks; fan-out to subscribed sinks is the dispatcher's job.
- Producers' tests should check their data with `catalogue.validate(type, data)`.
"""

from __future__ import annotations

import time as wallclock
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import ColumnElement, func, select, text, tuple_
from sqlalchemy.orm import Session

from simplane.core import wakeup
from simplane.core.bulk import BulkSql
from simplane.core.clock import utc
from simplane.core.sids import new_sid
from simplane.events.models import OutboxEvent

Position = tuple[int, int]  # (txid, pk): see OutboxEvent
WRITTEN = ("id", "account_sid", "type", "subject", "time", "data", "published_at")


def event_time(when: datetime | None) -> str:
    """CloudEvents time as Twilio writes it: UTC, milliseconds, e.g. 2022-12-14T13:40:52.000Z."""
    return _event_time(when or datetime.now(UTC))


@lru_cache(maxsize=4096)  # a batch's events share their times
def _event_time(when: datetime) -> str:
    when = utc(when)  # a naive datetime is UTC, as everywhere in simplane
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _row(account_sid: str, type_: str, data: Mapping[str, Any], subject: str | None,
         when: datetime | None, id_: str | None, now: float) -> tuple:
    """The values of WRITTEN."""
    return (id_ or data.get("event_sid") or new_sid("EZ"), account_sid, type_, subject,
            event_time(when), orjson.dumps(data).decode(), now)


def publish(db: Session, account_sid: str, type: str, data: Mapping[str, Any], *,
            subject: str | None = None, time: datetime | None = None,
            id: str | None = None) -> str:
    """Write one event in the caller's transaction; returns its id."""
    return publish_many(db, [{"account_sid": account_sid, "type": type, "data": data,
                              "subject": subject, "time": time, "id": id}])[0]


def publish_many(db: Session, rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Write many events with one executemany. Each row has account_sid, type, data and
    optionally subject, time and id; returns their ids in order."""
    now = wallclock.time()
    values = [_row(r["account_sid"], r["type"], r["data"], r.get("subject"), r.get("time"),
                   r.get("id"), now) for r in rows]
    if values:
        BulkSql(db).insert(OutboxEvent.__table__, WRITTEN, values)
        wakeup.work_committed(db)  # the dispatchers, here and in other processes
    return [v[0] for v in values]


def position(db: Session) -> Position:
    """Where the outbox ends for this transaction: events published after it sort after it."""
    if db.get_bind().dialect.name == "postgresql":
        return int(db.scalar(text("SELECT (pg_current_xact_id()::text)::bigint"))), 0
    return 0, int(db.execute(select(func.coalesce(func.max(OutboxEvent.pk), 0))).scalar_one())


# The oldest transaction of this database still running (a 64-bit xid), or the next xid to be
# given out: every event with a smaller txid is committed or rolled back. Only this database's
# transactions count (xids are cluster-wide): a long transaction in another database must not
# hold back delivery. pg_stat_activity gives 32-bit xids, matched against the snapshot's.
_OLDEST_RUNNING = text("""(
    SELECT coalesce((
        SELECT min(x::text::bigint) FROM pg_snapshot_xip(s) AS x
        WHERE x::text::bigint % 4294967296 IN (
            SELECT backend_xid::text::bigint FROM pg_stat_activity
            WHERE datname = current_database() AND backend_xid IS NOT NULL)
    ), pg_snapshot_xmax(s)::text::bigint)
    FROM pg_current_snapshot() AS s)""")


def visible_bound(db: Session) -> ColumnElement[bool] | None:
    """On PostgreSQL, a condition keeping only events of transactions older than every running
    one of this database (they can no longer be joined by an earlier, slower commit); None on
    SQLite, whose writers commit one after the other."""
    if db.get_bind().dialect.name != "postgresql":
        return None
    db.execute(text("SELECT pg_stat_clear_snapshot()"))  # fresh activity, not the cached one
    return OutboxEvent.txid < _OLDEST_RUNNING


def after(db: Session, cursor: tuple[Any, Any]) -> ColumnElement[bool]:
    """Events past a position (or the columns holding one). On PostgreSQL a row-value
    comparison, which it answers with an index range scan; on SQLite, where txid is always 0,
    txid = 0 and a range of pk (SQLite would only range over the first column of a row
    value)."""
    txid, pk = cursor
    if db.get_bind().dialect.name != "postgresql":
        return (OutboxEvent.txid == 0) & (OutboxEvent.pk > pk)
    return tuple_(OutboxEvent.txid, OutboxEvent.pk) > tuple_(txid, pk)


def up_to(db: Session, position: Position) -> ColumnElement[bool]:
    if db.get_bind().dialect.name != "postgresql":
        return OutboxEvent.pk <= position[1]
    return tuple_(OutboxEvent.txid, OutboxEvent.pk) <= tuple_(*position)


COLUMNS = (OutboxEvent.txid, OutboxEvent.pk, OutboxEvent.id, OutboxEvent.account_sid,
           OutboxEvent.type, OutboxEvent.subject, OutboxEvent.time, OutboxEvent.data,
           OutboxEvent.published_at)


def read_after(db: Session, cursor: Position, limit: int, account_sid: str | None = None, *,
               types: Iterable[str] | None = None, until: Position | None = None) -> list[Any]:
    """The next committed events after `cursor` (rows with OutboxEvent's columns), in outbox
    order: one account's or all, of some types or all, up to `until` (inclusive) or not."""
    stmt = select(*COLUMNS).where(after(db, cursor))
    if account_sid is not None:
        stmt = stmt.where(OutboxEvent.account_sid == account_sid)
    if types is not None:
        stmt = stmt.where(OutboxEvent.type.in_(list(types)))
    if until is not None:
        stmt = stmt.where(up_to(db, until))
    bound = visible_bound(db)
    if bound is not None:
        stmt = stmt.where(bound)
    return list(db.execute(stmt.order_by(OutboxEvent.txid, OutboxEvent.pk).limit(limit)))


def last_visible(db: Session, account_sid: str | None = None) -> Position:
    """The position of the newest committed event (of one account), (0, 0) when there is none.
    Every event up to it is visible from now on: a later read sees no new event before it."""
    stmt = select(OutboxEvent.txid, OutboxEvent.pk)
    if account_sid is not None:
        stmt = stmt.where(OutboxEvent.account_sid == account_sid)
    bound = visible_bound(db)
    if bound is not None:
        stmt = stmt.where(bound)
    row = db.execute(stmt.order_by(OutboxEvent.txid.desc(), OutboxEvent.pk.desc()).limit(1)).first()
    return (row.txid, row.pk) if row else (0, 0)
