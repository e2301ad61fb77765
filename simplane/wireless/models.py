"""Wireless tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from simplane.core.db import Base, UTCDateTime
from simplane.core.models import PK


class RatePlan(Base):
    __tablename__ = "wireless_rate_plans"
    __table_args__ = (
        UniqueConstraint("account_sid", "unique_name"),
        Index("ix_wireless_rate_plans_account", "account_sid", "pk"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    unique_name: Mapped[str | None] = mapped_column(String(255))
    friendly_name: Mapped[str | None] = mapped_column(String(255))
    data_enabled: Mapped[bool] = mapped_column(Boolean)
    data_metering: Mapped[str] = mapped_column(String(16))
    data_limit: Mapped[int] = mapped_column(Integer)
    data_limit_strategy: Mapped[str] = mapped_column(String(16))
    # KORE's RatePlan fields: where and how SIMs' crossings of the plan's data limits are
    # notified (see simplane.wireless.notifications).
    usage_notification_url: Mapped[str | None] = mapped_column(Text)
    usage_notification_method: Mapped[str | None] = mapped_column(String(8))
    messaging_enabled: Mapped[bool] = mapped_column(Boolean)
    voice_enabled: Mapped[bool] = mapped_column(Boolean)
    national_roaming_enabled: Mapped[bool] = mapped_column(Boolean)
    national_roaming_data_limit: Mapped[int] = mapped_column(Integer)
    international_roaming: Mapped[list] = mapped_column(JSON)
    international_roaming_data_limit: Mapped[int] = mapped_column(Integer)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    date_updated: Mapped[datetime] = mapped_column(UTCDateTime)


class Sim(Base):
    __tablename__ = "wireless_sims"
    __table_args__ = (
        UniqueConstraint("account_sid", "unique_name"),
        Index("ix_wireless_sims_account", "account_sid", "pk"),
        Index("ix_wireless_sims_account_status", "account_sid", "status", "pk"),
        Index("ix_wireless_sims_account_rate_plan", "account_sid", "rate_plan_pk", "pk"),
        Index("ix_wireless_sims_registration_code", "registration_code"),
        # The worker's timers (ready → active, deactivated → canceled) and resets.
        Index("ix_wireless_sims_status", "status", "date_status_changed"),
        Index("ix_wireless_sims_reset_status", "reset_status"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    unique_name: Mapped[str | None] = mapped_column(String(255))
    friendly_name: Mapped[str | None] = mapped_column(String(255))
    iccid: Mapped[str] = mapped_column(String(22), unique=True)
    imsi: Mapped[str] = mapped_column(String(15), unique=True)
    # The number an SMSC reaches the SIM on (E.164 digits); not in Twilio's API.
    msisdn: Mapped[str | None] = mapped_column(String(15), index=True, unique=True)
    e_id: Mapped[str | None] = mapped_column(String(32))
    registration_code: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    reset_status: Mapped[str | None] = mapped_column(String(16))
    rate_plan_pk: Mapped[int | None] = mapped_column(
        ForeignKey("wireless_rate_plans.pk", ondelete="RESTRICT"))
    commands_callback_url: Mapped[str | None] = mapped_column(Text)
    commands_callback_method: Mapped[str] = mapped_column(String(8), default="POST")
    # The API commands_callback_url was set through ("twilio" | "kore"): how its callbacks are sent.
    commands_callback_flavour: Mapped[str] = mapped_column(String(8), default="twilio",
                                                               server_default="twilio")
    sms_fallback_method: Mapped[str] = mapped_column(String(8), default="POST")
    sms_fallback_url: Mapped[str | None] = mapped_column(Text)
    sms_method: Mapped[str] = mapped_column(String(8), default="POST")
    sms_url: Mapped[str | None] = mapped_column(Text)
    voice_fallback_method: Mapped[str] = mapped_column(String(8), default="POST")
    voice_fallback_url: Mapped[str | None] = mapped_column(Text)
    voice_method: Mapped[str] = mapped_column(String(8), default="POST")
    voice_url: Mapped[str | None] = mapped_column(Text)
    ip_address: Mapped[str | None] = mapped_column(String(45))
    # Where to report the end of a status change still under way (ready→active, deactivated→canceled).
    status_callback_url: Mapped[str | None] = mapped_column(Text)
    status_callback_method: Mapped[str | None] = mapped_column(String(8))
    # The API status_callback_url was set through ("twilio" | "kore"): how its callbacks are sent.
    status_callback_flavour: Mapped[str] = mapped_column(String(8), default="twilio",
                                                             server_default="twilio")
    date_status_changed: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the SIM first became active: its rate plan's data limits are metered monthly from
    # here (before it, by calendar month).
    date_activated: Mapped[datetime | None] = mapped_column(UTCDateTime)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    date_updated: Mapped[datetime] = mapped_column(UTCDateTime)


class Command(Base):
    __tablename__ = "wireless_commands"
    __table_args__ = (
        Index("ix_wireless_commands_account", "account_sid", "pk"),
        Index("ix_wireless_commands_account_sim", "account_sid", "sim_sid", "pk"),
        Index("ix_wireless_commands_status", "status", "direction"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    sim_sid: Mapped[str] = mapped_column(String(34))
    command: Mapped[str] = mapped_column(Text)
    command_mode: Mapped[str] = mapped_column(String(8))
    transport: Mapped[str] = mapped_column(String(8))
    delivery_receipt_requested: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(8))
    callback_url: Mapped[str | None] = mapped_column(Text)
    callback_method: Mapped[str] = mapped_column(String(8), default="POST")
    # The API its callback URL was set through ("twilio" | "kore"): how its callbacks are sent.
    flavour: Mapped[str] = mapped_column(String(8), default="twilio", server_default="twilio")
    # The SMSC's message_id once it accepted the command (network/smpp.py): its receipt names it.
    smsc_message_id: Mapped[str | None] = mapped_column(String(65), index=True)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    date_updated: Mapped[datetime] = mapped_column(UTCDateTime)
