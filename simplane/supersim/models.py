"""Super SIM tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from simplane.core.db import Base, UTCDateTime
from simplane.core.models import PK


class NetworkAccessProfile(Base):
    __tablename__ = "supersim_network_access_profiles"
    __table_args__ = (
        UniqueConstraint("account_sid", "unique_name"),
        Index("ix_supersim_network_access_profiles_account", "account_sid", "pk"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    unique_name: Mapped[str | None] = mapped_column(String(255))
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    date_updated: Mapped[datetime] = mapped_column(UTCDateTime)


class NetworkAccessProfileNetwork(Base):
    """A Network (HW…, from the catalogue in networks.py) allowed by a profile."""

    __tablename__ = "supersim_nap_networks"
    __table_args__ = (UniqueConstraint("nap_pk", "network_sid"),)

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    nap_pk: Mapped[int] = mapped_column(
        ForeignKey("supersim_network_access_profiles.pk", ondelete="CASCADE"))
    network_sid: Mapped[str] = mapped_column(String(34))


class Fleet(Base):
    __tablename__ = "supersim_fleets"
    __table_args__ = (
        UniqueConstraint("account_sid", "unique_name"),
        Index("ix_supersim_fleets_account", "account_sid", "pk"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    unique_name: Mapped[str | None] = mapped_column(String(255))
    nap_pk: Mapped[int] = mapped_column(
        ForeignKey("supersim_network_access_profiles.pk", ondelete="RESTRICT"), index=True)
    data_enabled: Mapped[bool] = mapped_column(Boolean)
    data_limit: Mapped[int] = mapped_column(Integer)  # MB per SIM per billing period
    data_metering: Mapped[str] = mapped_column(String(16))
    sms_commands_enabled: Mapped[bool] = mapped_column(Boolean)
    sms_commands_url: Mapped[str | None] = mapped_column(Text)
    sms_commands_method: Mapped[str] = mapped_column(String(8))
    # The API sms_commands_url was set through ("twilio" | "kore"): how its callbacks are sent.
    sms_commands_flavour: Mapped[str] = mapped_column(String(8), default="twilio",
                                                          server_default="twilio")
    ip_commands_url: Mapped[str | None] = mapped_column(Text)
    ip_commands_method: Mapped[str] = mapped_column(String(8))
    # The API ip_commands_url was set through ("twilio" | "kore"): how its callbacks are sent.
    ip_commands_flavour: Mapped[str] = mapped_column(String(8), default="twilio",
                                                         server_default="twilio")
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    date_updated: Mapped[datetime] = mapped_column(UTCDateTime)


class Sim(Base):
    """A Super SIM. Provisioned SIMs wait in the operator's inventory (account_sid NULL) until
    an account registers them with their ICCID and registration code."""

    __tablename__ = "supersim_sims"
    __table_args__ = (
        UniqueConstraint("account_sid", "unique_name"),
        Index("ix_supersim_sims_account", "account_sid", "pk"),
        Index("ix_supersim_sims_account_status", "account_sid", "status", "pk"),
        Index("ix_supersim_sims_account_fleet", "account_sid", "fleet_pk", "pk"),
        Index("ix_supersim_sims_status", "status", "date_status_changed"),
        Index("ix_supersim_sims_ip_address", "ip_address"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str | None] = mapped_column(String(34))
    unique_name: Mapped[str | None] = mapped_column(String(255))
    iccid: Mapped[str] = mapped_column(String(22), unique=True)
    imsi: Mapped[str] = mapped_column(String(15), unique=True)
    # The number an SMSC reaches the SIM on (E.164 digits); not in Twilio's API.
    msisdn: Mapped[str | None] = mapped_column(String(15), index=True, unique=True)
    registration_code: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    # While `scheduled`: the status asked for, and where to report that it was reached.
    scheduled_status: Mapped[str | None] = mapped_column(String(16))
    callback_url: Mapped[str | None] = mapped_column(Text)
    callback_method: Mapped[str | None] = mapped_column(String(8))
    # The API its callback URL was set through ("twilio" | "kore").
    callback_flavour: Mapped[str] = mapped_column(String(8), default="twilio",
                                                  server_default="twilio")
    fleet_pk: Mapped[int | None] = mapped_column(
        ForeignKey("supersim_fleets.pk", ondelete="RESTRICT"))
    # Address of the SIM's open data session (set by the network, see access.set_ip_addresses).
    ip_address: Mapped[str | None] = mapped_column(String(45))
    date_ready: Mapped[datetime | None] = mapped_column(UTCDateTime)
    date_activated: Mapped[datetime | None] = mapped_column(UTCDateTime)
    date_status_changed: Mapped[datetime] = mapped_column(UTCDateTime)
    date_registered: Mapped[datetime | None] = mapped_column(UTCDateTime)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    date_updated: Mapped[datetime] = mapped_column(UTCDateTime)


class SmsCommand(Base):
    __tablename__ = "supersim_sms_commands"
    __table_args__ = (
        Index("ix_supersim_sms_commands_account", "account_sid", "pk"),
        Index("ix_supersim_sms_commands_account_sim", "account_sid", "sim_sid", "pk"),
        Index("ix_supersim_sms_commands_status", "status", "direction"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    sim_sid: Mapped[str] = mapped_column(String(34))
    payload: Mapped[str] = mapped_column(Text)
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


class IpCommand(Base):
    __tablename__ = "supersim_ip_commands"
    __table_args__ = (
        Index("ix_supersim_ip_commands_account", "account_sid", "pk"),
        Index("ix_supersim_ip_commands_account_sim", "account_sid", "sim_sid", "pk"),
        Index("ix_supersim_ip_commands_status", "status", "direction"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    sim_sid: Mapped[str] = mapped_column(String(34))
    sim_iccid: Mapped[str] = mapped_column(String(22))
    status: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(8))
    device_ip: Mapped[str | None] = mapped_column(String(45))
    device_port: Mapped[int] = mapped_column(Integer)
    payload_type: Mapped[str] = mapped_column(String(8))
    payload: Mapped[str] = mapped_column(Text)
    callback_url: Mapped[str | None] = mapped_column(Text)
    callback_method: Mapped[str] = mapped_column(String(8), default="POST")
    # The API its callback URL was set through ("twilio" | "kore"): how its callbacks are sent.
    flavour: Mapped[str] = mapped_column(String(8), default="twilio", server_default="twilio")
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    date_updated: Mapped[datetime] = mapped_column(UTCDateTime)


class UsageHour(Base):
    """Bytes a SIM moved in one hour on one network: what UsageRecords read (never raw history).
    Written by ingest (usage.upsert)."""

    __tablename__ = "supersim_usage_hours"
    __table_args__ = (
        UniqueConstraint("sim_sid", "hour", "network_sid"),
        Index("ix_supersim_usage_hours_account_hour", "account_sid", "hour"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    sim_sid: Mapped[str] = mapped_column(String(34))
    fleet_sid: Mapped[str | None] = mapped_column(String(34))
    network_sid: Mapped[str] = mapped_column(String(34))
    iso_country: Mapped[str | None] = mapped_column(String(2))
    hour: Mapped[datetime] = mapped_column(UTCDateTime)
    data_upload: Mapped[int] = mapped_column(BigInteger, default=0)
    data_download: Mapped[int] = mapped_column(BigInteger, default=0)
    data_total: Mapped[int] = mapped_column(BigInteger, default=0)


class SettingsUpdate(Base):
    """Settings packages pushed over the air to a SIM."""

    __tablename__ = "supersim_settings_updates"
    __table_args__ = (
        Index("ix_supersim_settings_updates_account", "account_sid", "pk"),
        Index("ix_supersim_settings_updates_status", "status"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    sim_sid: Mapped[str] = mapped_column(String(34), index=True)
    iccid: Mapped[str] = mapped_column(String(22))
    status: Mapped[str] = mapped_column(String(16))
    packages: Mapped[list] = mapped_column(JSON)
    date_completed: Mapped[datetime | None] = mapped_column(UTCDateTime)
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    date_updated: Mapped[datetime] = mapped_column(UTCDateTime)


class EsimProfile(Base):
    __tablename__ = "supersim_esim_profiles"
    __table_args__ = (
        Index("ix_supersim_esim_profiles_account", "account_sid", "pk"),
        Index("ix_supersim_esim_profiles_status", "status"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    sim_sid: Mapped[str | None] = mapped_column(String(34))
    iccid: Mapped[str | None] = mapped_column(String(22))
    status: Mapped[str] = mapped_column(String(16))
    eid: Mapped[str | None] = mapped_column(String(32))
    generate_matching_id: Mapped[bool] = mapped_column(Boolean)
    smdp_plus_address: Mapped[str | None] = mapped_column(String(255))
    matching_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    activation_code: Mapped[str | None] = mapped_column(String(255))
    error_code: Mapped[str | None] = mapped_column(String(16))
    error_message: Mapped[str | None] = mapped_column(Text)
    callback_url: Mapped[str | None] = mapped_column(Text)
    callback_method: Mapped[str] = mapped_column(String(8), default="POST")
    # The API its callback URL was set through ("twilio" | "kore"): how its callbacks are sent.
    flavour: Mapped[str] = mapped_column(String(8), default="twilio", server_default="twilio")
    date_created: Mapped[datetime] = mapped_column(UTCDateTime)
    date_updated: Mapped[datetime] = mapped_column(UTCDateTime)
