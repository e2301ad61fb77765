"""Proxy tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from simplane.core.db import Base, UTCDateTime
from simplane.core.models import PK


class ProxyService(Base):
    __tablename__ = "proxy_services"
    __table_args__ = (
        UniqueConstraint("account_sid", "unique_name"),
        Index("ix_proxy_services_account", "account_sid", "pk"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    unique_name: Mapped[str] = mapped_column(String(191))
    chat_instance_sid: Mapped[str | None] = mapped_column(String(34))
    callback_url: Mapped[str | None] = mapped_column(Text)
    default_ttl: Mapped[int] = mapped_column(Integer)
    number_selection_behavior: Mapped[str] = mapped_column(String(16))
    geo_match_level: Mapped[str] = mapped_column(String(16))
    intercept_callback_url: Mapped[str | None] = mapped_column(Text)
    out_of_session_callback_url: Mapped[str | None] = mapped_column(Text)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    date_updated: Mapped[datetime] = mapped_column(UTCDateTime)


class ProxyPhoneNumber(Base):
    __tablename__ = "proxy_phone_numbers"
    __table_args__ = (
        UniqueConstraint("service_pk", "phone_number"),
        Index("ix_proxy_phone_numbers_service", "service_pk", "pk"),
        Index("ix_proxy_phone_numbers_account_number", "account_sid", "phone_number"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34))
    account_sid: Mapped[str] = mapped_column(String(34))
    service_pk: Mapped[int] = mapped_column(ForeignKey("proxy_services.pk", ondelete="CASCADE"))
    phone_number: Mapped[str] = mapped_column(String(32))
    friendly_name: Mapped[str | None] = mapped_column(String(64))
    iso_country: Mapped[str | None] = mapped_column(String(2))
    capabilities: Mapped[dict] = mapped_column(JSON)
    is_reserved: Mapped[bool] = mapped_column(Boolean)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    date_updated: Mapped[datetime] = mapped_column(UTCDateTime)


class ProxySession(Base):
    __tablename__ = "proxy_sessions"
    __table_args__ = (
        UniqueConstraint("service_pk", "unique_name"),
        Index("ix_proxy_sessions_service", "service_pk", "pk"),
        Index("ix_proxy_sessions_expiry", "status", "expires_at"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    service_pk: Mapped[int] = mapped_column(ForeignKey("proxy_services.pk", ondelete="CASCADE"))
    service_sid: Mapped[str] = mapped_column(String(34))
    unique_name: Mapped[str | None] = mapped_column(String(191))
    status: Mapped[str] = mapped_column(String(16))
    closed_reason: Mapped[str | None] = mapped_column(String(64))
    ttl: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(20))
    date_started: Mapped[datetime | None] = mapped_column(UTCDateTime)
    date_ended: Mapped[datetime | None] = mapped_column(UTCDateTime)
    date_last_interaction: Mapped[datetime | None] = mapped_column(UTCDateTime)
    date_expiry: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the ttl starts counting: create, re-open or the last interaction.
    ttl_from: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the session closes on its own (date_expiry, else ttl_from + ttl; None: never).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    date_updated: Mapped[datetime] = mapped_column(UTCDateTime)


class ProxyParticipant(Base):
    __tablename__ = "proxy_participants"
    __table_args__ = (
        Index("ix_proxy_participants_session", "session_pk", "pk"),
        Index("ix_proxy_participants_identifier", "service_pk", "identifier"),
        Index("ix_proxy_participants_number", "service_pk", "proxy_identifier_sid"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    service_pk: Mapped[int] = mapped_column(ForeignKey("proxy_services.pk", ondelete="CASCADE"))
    session_pk: Mapped[int] = mapped_column(ForeignKey("proxy_sessions.pk", ondelete="CASCADE"))
    friendly_name: Mapped[str | None] = mapped_column(String(255))
    identifier: Mapped[str] = mapped_column(String(255))
    proxy_identifier: Mapped[str | None] = mapped_column(String(32))
    proxy_identifier_sid: Mapped[str | None] = mapped_column(String(34))
    date_deleted: Mapped[datetime | None] = mapped_column(UTCDateTime)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    date_updated: Mapped[datetime] = mapped_column(UTCDateTime)


class ProxyInteraction(Base):
    __tablename__ = "proxy_interactions"
    __table_args__ = (
        Index("ix_proxy_interactions_session", "session_pk", "pk"),
        Index("ix_proxy_interactions_participant", "session_pk", "participant_sid", "pk"),
        Index("ix_proxy_interactions_outbound_status", "outbound_resource_status"),
        Index("ix_proxy_interactions_inbound_resource", "inbound_resource_sid"),
        Index("ix_proxy_interactions_outbound_resource", "outbound_resource_sid"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    service_pk: Mapped[int] = mapped_column(ForeignKey("proxy_services.pk", ondelete="CASCADE"))
    session_pk: Mapped[int] = mapped_column(ForeignKey("proxy_sessions.pk", ondelete="CASCADE"))
    # The participant a MessageInteraction was sent to (None for inbound-initiated interactions).
    participant_sid: Mapped[str | None] = mapped_column(String(34))
    data: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(16))
    inbound_participant_sid: Mapped[str | None] = mapped_column(String(34))
    inbound_resource_sid: Mapped[str | None] = mapped_column(String(34))
    inbound_resource_status: Mapped[str | None] = mapped_column(String(20))
    inbound_resource_type: Mapped[str | None] = mapped_column(String(16))
    inbound_resource_url: Mapped[str | None] = mapped_column(Text)
    outbound_participant_sid: Mapped[str | None] = mapped_column(String(34))
    outbound_resource_sid: Mapped[str | None] = mapped_column(String(34))
    outbound_resource_status: Mapped[str | None] = mapped_column(String(20))
    outbound_resource_type: Mapped[str | None] = mapped_column(String(16))
    outbound_resource_url: Mapped[str | None] = mapped_column(Text)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    date_updated: Mapped[datetime] = mapped_column(UTCDateTime)


class ProxyAccountNumber(Base):
    """A phone number the account owns (put there by the operator), ready for any pool."""

    __tablename__ = "proxy_account_numbers"
    __table_args__ = (UniqueConstraint("account_sid", "phone_number"),)

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    phone_number: Mapped[str] = mapped_column(String(32))
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)


class ProxyOutbox(Base):
    """What the simulated carrier delivered: each outbound message or call, as its recipient
    saw it (from a proxy number, never the other participant's real one)."""

    __tablename__ = "proxy_outbox"
    __table_args__ = (
        Index("ix_proxy_outbox_account", "account_sid", "pk"),
        Index("ix_proxy_outbox_to", "to_number", "pk"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)  # SM… or CA…
    account_sid: Mapped[str] = mapped_column(String(34))
    kind: Mapped[str] = mapped_column(String(8))  # message | call
    from_number: Mapped[str] = mapped_column(String(255))
    to_number: Mapped[str] = mapped_column(String(255))
    body: Mapped[str | None] = mapped_column(Text)
    media_urls: Mapped[list | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))
    service_sid: Mapped[str | None] = mapped_column(String(34))
    session_sid: Mapped[str | None] = mapped_column(String(34))
    interaction_sid: Mapped[str | None] = mapped_column(String(34))
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
