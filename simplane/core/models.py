"""The kernel's tables: accounts, their API keys, the durable queue of outbound callbacks, the
clock, and the leases on roles that run once per database (SQLite's; see `core/leases.py`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from simplane.core.db import Base, UTCDateTime

PK = BigInteger().with_variant(Integer(), "sqlite")


class Account(Base):
    __tablename__ = "accounts"

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    friendly_name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="active")
    admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    owner_account_sid: Mapped[str | None] = mapped_column(String(34), index=True)
    auth_token_hash: Mapped[str] = mapped_column(String(200))
    auth_token_sealed: Mapped[str] = mapped_column(Text)  # encrypted: callbacks are signed with it
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    date_updated: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKey(Base):
    __tablename__ = "api_keys"

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(
        String(34), ForeignKey("accounts.sid", ondelete="CASCADE"), index=True
    )
    friendly_name: Mapped[str | None] = mapped_column(String(255))
    secret_hash: Mapped[str] = mapped_column(String(200))
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)


class Callback(Base):
    """An outbound, signed HTTP request owed to a customer's URL; kept until delivered."""

    __tablename__ = "callbacks"
    __table_args__ = (Index("ix_callbacks_due", "status", "next_attempt_at"),)

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    url: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(8))
    params: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|delivered|failed
    # How it is signed and sent, as the API it was configured through does: "twilio"
    # (X-Twilio-Signature with the auth token) or "kore" (kore-signature with the account's
    # active webhook secret, kore-idempotency-token).
    flavour: Mapped[str] = mapped_column(String(8), default="twilio", server_default="twilio")
    token: Mapped[str | None] = mapped_column(String(36))  # the event's id: the same on a retry
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    # Wall-clock second until which a process that claimed it is sending it (None: unclaimed):
    # the worker of every process sends callbacks, each one it claimed.
    lease_until: Mapped[float | None] = mapped_column(Float)


class ClockState(Base):
    """The database's one "now", shared by every process on it (a single row, id 1): real time,
    or a virtual time that was `virtual_base` at wall-clock second `real_base` and runs at
    `speed` (0: stands still). `version` counts the changes."""

    __tablename__ = "clock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = mapped_column(String(8))  # real | virtual
    virtual_base: Mapped[datetime | None] = mapped_column(UTCDateTime)
    real_base: Mapped[float | None] = mapped_column(Float)
    speed: Mapped[float] = mapped_column(Float)
    version: Mapped[int] = mapped_column(Integer)


class RoleLease(Base):
    """Who runs a role that runs once per database (the SMPP bind, the simulator), until when
    (wall-clock seconds), on SQLite; PostgreSQL holds advisory locks instead."""

    __tablename__ = "role_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    until: Mapped[float] = mapped_column(Float)
