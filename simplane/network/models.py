"""The network's tables: data sessions, SIM states and the ingest generation, written only by
ingest; the SIM facts version, written only by triggers; the Wireless hourly usage rollups
(data by ingest, command counts by the Commands service); and the Disconnect-Requests owed to
packet gateways."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Float,
    Index,
    Integer,
    String,
    UniqueConstraint,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from simplane.core.db import Base, UTCDateTime
from simplane.core.models import PK


class DataSession(Base):
    __tablename__ = "network_data_sessions"
    __table_args__ = (
        UniqueConstraint("sim_sid", "session_id"),
        Index("ix_network_data_sessions_sim", "sim_sid", "pk"),
        Index("ix_network_data_sessions_gateway", "gateway", "status"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    sim_sid: Mapped[str] = mapped_column(String(34))
    session_id: Mapped[str] = mapped_column(String(128))
    # open | ended | failed, or refused: the network did not let it start (never listed)
    status: Mapped[str] = mapped_column(String(16))
    radio_link: Mapped[str | None] = mapped_column(String(16))
    operator_mcc: Mapped[str | None] = mapped_column(String(3))
    operator_mnc: Mapped[str | None] = mapped_column(String(3))
    operator_country: Mapped[str | None] = mapped_column(String(2))
    operator_name: Mapped[str | None] = mapped_column(String(128))
    roaming: Mapped[str] = mapped_column(String(16))  # home | national | international
    cell_id: Mapped[str | None] = mapped_column(String(32))
    lac: Mapped[str | None] = mapped_column(String(32))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    imei: Mapped[str | None] = mapped_column(String(16))
    apn: Mapped[str | None] = mapped_column(String(64))
    ip_address: Mapped[str | None] = mapped_column(String(45))
    bytes_up: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_down: Mapped[int] = mapped_column(BigInteger, default=0)
    packets_up: Mapped[int] = mapped_column(BigInteger, default=0)
    packets_down: Mapped[int] = mapped_column(BigInteger, default=0)
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_updated: Mapped[datetime] = mapped_column(UTCDateTime)
    # The update window under way (Super SIM data-session.updated events): since when, and the
    # bytes counted in it.
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_up: Mapped[int] = mapped_column(BigInteger, default=0)
    window_down: Mapped[int] = mapped_column(BigInteger, default=0)
    end_reason: Mapped[str | None] = mapped_column(String(32))  # why the network ended/refused it
    # The packet gateway carrying it, so that its sessions end when it restarts.
    gateway: Mapped[str | None] = mapped_column(String(64))
    # Who the gateway says the session is (RADIUS User-Name), and where its Disconnect-Requests
    # go (the gateway's NAS-IP-Address, else the address its accounting came from; None when
    # the session cannot be cut off from here).
    user_name: Mapped[str | None] = mapped_column(String(64))
    disconnect_to: Mapped[str | None] = mapped_column(String(45))


class SimUsageHour(Base):
    """Bytes a SIM moved in one hour, per roaming class and serving country."""

    __tablename__ = "network_sim_usage_hours"

    sim_sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    roaming: Mapped[str] = mapped_column(String(16), primary_key=True)
    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    upload: Mapped[int] = mapped_column(BigInteger, default=0)
    download: Mapped[int] = mapped_column(BigInteger, default=0)
    commands_from_sim: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    commands_to_sim: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class AccountUsageHour(Base):
    """The same, summed over an account's SIMs, so account usage never scans per-SIM rows."""

    __tablename__ = "network_account_usage_hours"

    account_sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    roaming: Mapped[str] = mapped_column(String(16), primary_key=True)
    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    upload: Mapped[int] = mapped_column(BigInteger, default=0)
    download: Mapped[int] = mapped_column(BigInteger, default=0)
    commands_from_sim: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    commands_to_sim: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class SimState(Base):
    """What the network knows of a SIM now: whether it is attached and where, and the data it
    has used this billing period per roaming class (for its rate plan's limits)."""

    __tablename__ = "network_sim_states"
    __table_args__ = (Index("ix_network_sim_states_attached", "attached", "sim_sid"),)

    sim_sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    attached: Mapped[bool] = mapped_column(Boolean)
    mcc: Mapped[str | None] = mapped_column(String(3))
    mnc: Mapped[str | None] = mapped_column(String(3))
    roaming: Mapped[str] = mapped_column(String(16))
    country: Mapped[str] = mapped_column(String(2))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The billing period the usage below counts in, by its first second (YYYY-MM-DDTHH:MM:SS):
    # a month from activation (for Super SIM, the ready period too), else the calendar month.
    period: Mapped[str] = mapped_column(String(19))
    used_home: Mapped[int] = mapped_column(BigInteger)
    used_national: Mapped[int] = mapped_column(BigInteger)
    used_international: Mapped[int] = mapped_column(BigInteger)


class IngestGeneration(Base):
    """One row: how many ingest batches have committed (see simplane.network.cache)."""

    __tablename__ = "network_ingest"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)


class FactsVersion(Base):
    """One row: bumped (by triggers of migration 0011) whenever what ingest reads of a SIM may
    have changed (see simplane.network.cache)."""

    __tablename__ = "network_facts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class Disconnect(Base):
    """A Disconnect-Request (RFC 5176) owed to the packet gateway of a data session, kept until
    the gateway acknowledges it: one per session."""

    __tablename__ = "network_disconnects"
    __table_args__ = (
        UniqueConstraint("sim_sid", "session_id"),
        Index("ix_network_disconnects_due", "status", "next_attempt_at"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    sim_sid: Mapped[str] = mapped_column(String(34))
    imsi: Mapped[str] = mapped_column(String(16))
    session_id: Mapped[str] = mapped_column(String(128))  # Acct-Session-Id
    address: Mapped[str] = mapped_column(String(45))  # the gateway's
    user_name: Mapped[str | None] = mapped_column(String(64))
    framed_ip: Mapped[str | None] = mapped_column(String(45))
    nas_identifier: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))  # why: SIM_NOT_ACTIVE, RESET, …
    # pending, then acknowledged (Disconnect-ACK), gone (the gateway has no such session),
    # ended (its session ended before it went out) or failed (no ACK before the retry horizon);
    # held while no server sends Disconnect-Requests (no DAE port), then pending, or dropped
    # when the policy no longer calls for it (see simplane.network.disconnects)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(64))
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When it was owed; for one held, when a server with a DAE port released it (the retry
    # horizon counts from here)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    date_updated: Mapped[datetime] = mapped_column(UTCDateTime)


def after_restore(conn: Connection) -> None:
    """Restored rows are news to every process on the database: move the counters that tell a
    process its cached sessions and SIM facts are stale past their restored values (the triggers
    that bump the facts version while rows are inserted count the restore's inserts only)."""
    conn.execute(update(IngestGeneration).values(generation=IngestGeneration.generation + 1))
    conn.execute(update(FactsVersion).values(version=FactsVersion.version + 1))
