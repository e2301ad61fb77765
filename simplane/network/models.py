"""Tables written only by ingest: data sessions and hourly usage rollups."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from simplane.core.db import Base, UTCDateTime
from simplane.core.models import PK


class DataSession(Base):
    __tablename__ = "network_data_sessions"
    __table_args__ = (
        UniqueConstraint("sim_sid", "session_id"),
        Index("ix_network_data_sessions_sim", "sim_sid", "pk"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    sim_sid: Mapped[str] = mapped_column(String(34))
    session_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))  # open | ended | failed
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


class AccountUsageHour(Base):
    """The same, summed over an account's SIMs, so account usage never scans per-SIM rows."""

    __tablename__ = "network_account_usage_hours"

    account_sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    roaming: Mapped[str] = mapped_column(String(16), primary_key=True)
    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    upload: Mapped[int] = mapped_column(BigInteger, default=0)
    download: Mapped[int] = mapped_column(BigInteger, default=0)
