"""KORE's API clients: who may get bearer tokens, for which account and products."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from simplane.core.db import Base, UTCDateTime
from simplane.core.models import PK


class ApiClient(Base):
    """An OAuth client (client credentials) of an account. Its secret is kept as a keyed hash
    (`SecretBox.digest`), as auth tokens and API key secrets are; revoked clients are kept,
    with `date_revoked`, so that their ids are never reused."""

    __tablename__ = "kore_clients"
    __table_args__ = (Index("ix_kore_clients_account", "account_sid", "pk"),)

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    account_sid: Mapped[str] = mapped_column(
        String(34), ForeignKey("accounts.sid", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    client_type: Mapped[str] = mapped_column(String(16))  # admin | standard
    client_owner: Mapped[str | None] = mapped_column(String(255))
    products: Mapped[list] = mapped_column(JSON)  # SuperSIM, ProgrammableWireless
    lifetime: Mapped[int] = mapped_column(Integer)  # seconds a token lives
    locked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    secret_hash: Mapped[str] = mapped_column(String(200))
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    date_revoked: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuthState(Base):
    """One row (id 1): `generation` moves on whenever a client is revoked or locked, so that
    every process drops the tokens it has verified and checks them again."""

    __tablename__ = "kore_auth_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(Integer)
