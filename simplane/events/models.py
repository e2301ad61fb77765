"""Event Streams tables: the outbox of events, sinks (with their delivery cursor and lease),
subscriptions and their subscribed event types."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from simplane.core.db import Base, UTCDateTime
from simplane.core.models import PK


class OutboxEvent(Base):
    """One event, written in the transaction of the change that caused it.

    Events are read in (txid, pk) order. On SQLite writers are serialised, so pk order is commit
    order and txid is always 0. On PostgreSQL txid is the writing transaction's id
    (pg_current_xact_id) and readers only look at transactions older than every one still
    running, so an event that commits late is never skipped by a cursor that moved past it.
    """

    __tablename__ = "event_outbox"
    __table_args__ = (
        Index("ix_event_outbox_account_position", "account_sid", "txid", "pk"),
        Index("ix_event_outbox_position", "txid", "pk"),
        {"sqlite_autoincrement": True},  # a pk is never reused, even after pruning
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    txid: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    id: Mapped[str] = mapped_column(String(64))
    account_sid: Mapped[str] = mapped_column(String(34))
    type: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str | None] = mapped_column(String(64))  # ordering key: the SIM SID
    time: Mapped[str] = mapped_column(String(32))  # CloudEvents time, as delivered
    data: Mapped[str] = mapped_column(Text)  # JSON
    published_at: Mapped[float] = mapped_column(Float)  # wall clock, for delivery latency


class EventSink(Base):
    __tablename__ = "event_sinks"
    __table_args__ = (
        Index("ix_event_sinks_account", "account_sid", "pk"),
        Index("ix_event_sinks_due", "status", "next_attempt_at"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    description: Mapped[str] = mapped_column(Text)
    sink_type: Mapped[str] = mapped_column(String(16))
    # Encrypted with the server key (SecretBox): it may hold credentials (a write key, a
    # password in a webhook URL). See service.configuration().
    sink_configuration_sealed: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # initialized|validating|active|failed
    test_id: Mapped[str | None] = mapped_column(String(36))
    test_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Delivery state: everything up to the cursor has been delivered (or was not subscribed).
    cursor_txid: Mapped[int] = mapped_column(BigInteger, default=0)
    cursor_pk: Mapped[int] = mapped_column(BigInteger, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[float | None] = mapped_column(Float)  # wall clock: process liveness
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    date_updated: Mapped[datetime] = mapped_column(UTCDateTime)


class EventSubscription(Base):
    __tablename__ = "event_subscriptions"
    __table_args__ = (Index("ix_event_subscriptions_account", "account_sid", "pk"),)

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    sink_pk: Mapped[int] = mapped_column(ForeignKey("event_sinks.pk"), index=True)
    sink_sid: Mapped[str] = mapped_column(String(34))
    description: Mapped[str] = mapped_column(Text)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    date_updated: Mapped[datetime] = mapped_column(UTCDateTime)


class EventSubscribedEvent(Base):
    """A type a subscription receives, from the outbox position at which it was subscribed."""

    __tablename__ = "event_subscribed_events"
    __table_args__ = (UniqueConstraint("subscription_pk", "type"),)

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    subscription_pk: Mapped[int] = mapped_column(
        ForeignKey("event_subscriptions.pk", ondelete="CASCADE"))
    account_sid: Mapped[str] = mapped_column(String(34))
    type: Mapped[str] = mapped_column(String(128))
    schema_version: Mapped[int] = mapped_column(Integer)
    since_txid: Mapped[int] = mapped_column(BigInteger, default=0)
    since_pk: Mapped[int] = mapped_column(BigInteger, default=0)



def after_restore(conn: Connection) -> None:
    """Outbox positions (txid, pk) restored from a snapshot, made to mean here what they meant
    where it was taken. On PostgreSQL every txid moves by one amount so that the newest is the
    restoring transaction's: their order is kept, and every event published later sorts after
    them (xids of the database the snapshot came from may be ahead of this one's). On SQLite,
    where positions are pks alone, every txid is 0."""
    positions = [OutboxEvent.txid, EventSink.cursor_txid, EventSubscribedEvent.since_txid]
    if conn.dialect.name != "postgresql":
        for column in positions:
            conn.execute(update(column.class_).values({column: 0}))
        return
    newest = conn.scalar(select(func.max(union_all(*(
        select(column.label("txid")) for column in positions)).subquery().c.txid)))
    if newest is None:
        return
    shift = int(conn.scalar(text("SELECT (pg_current_xact_id()::text)::bigint"))) - newest
    for column in positions:
        conn.execute(update(column.class_).values({column: column + shift}))
