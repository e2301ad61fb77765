"""Super SIM background jobs: scheduled status changes, ready→active, SMS and IP Command
delivery, from-SIM datagrams, settings updates and eSIM profile reservation.

Each claims its rows with FOR UPDATE SKIP LOCKED (on PostgreSQL; SQLite has one writer), so
workers of several processes never handle the same row twice."""

from __future__ import annotations

import ipaddress
import secrets
import string
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from simplane.core import callbacks
from simplane.core.clock import months_after_bound, months_bound, months_due, months_passed
from simplane.network.models import DataSession, SimState
from simplane.supersim import billing, devices, service, udp
from simplane.supersim.inventory import add_sims, generated_rows
from simplane.supersim.models import (
    EsimProfile,
    IpCommand,
    SettingsUpdate,
    Sim,
    SmsCommand,
    UsageHour,
)

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

BATCH = 200


def _any(runtime: Runtime, stmt: Select) -> bool:
    """A cheap read first, so that an idle worker never takes the write lock."""
    with runtime.db.read() as db:
        return db.execute(stmt.limit(1)).first() is not None


def complete_status_changes(runtime: Runtime) -> bool:
    """scheduled → the status asked for, reported to the update's CallbackUrl."""
    if not _any(runtime, select(Sim.pk).where(Sim.status == "scheduled")):
        return False
    with runtime.db.write() as db:
        sims = list(db.scalars(select(Sim).where(Sim.status == "scheduled").limit(BATCH)
                               .with_for_update(skip_locked=True)))
        for sim in sims:
            service.change_status(db, runtime, sim, sim.scheduled_status or "active")
    return bool(sims)


def activate_ready_sims(runtime: Runtime) -> bool:
    """ready → active after 250 KB of data, 5 SMS Commands sent to or received from the SIM, or
    3 months, whichever comes first.
    One read finds the SIMs that are due; the write lock is taken only when there are some."""
    now = runtime.clock.now()
    data = (select(func.coalesce(func.sum(UsageHour.data_total), 0))
            .where(UsageHour.sim_sid == Sim.sid).scalar_subquery())
    sms = (select(func.count()).select_from(SmsCommand)
           .where(SmsCommand.account_sid == Sim.account_sid, SmsCommand.sim_sid == Sim.sid,
                  SmsCommand.status != "failed").scalar_subquery())  # to or from the SIM
    used_stmt = select(Sim.pk).where(Sim.status == "ready", or_(
        data >= service.READY_DATA_BYTES, sms >= service.READY_SMS_COMMANDS)).limit(BATCH)
    # The oldest first: once one is not due, no later one is.
    old_stmt = (select(Sim.pk, Sim.date_ready)
                .where(Sim.status == "ready",
                       Sim.date_ready <= months_bound(now, billing.READY_MONTHS))
                .order_by(Sim.date_ready).limit(BATCH))
    with runtime.db.read() as db:
        due = set(db.scalars(used_stmt))
        due.update(pk for pk, date_ready in db.execute(old_stmt)
                   if date_ready is not None
                   and months_passed(date_ready, billing.READY_MONTHS, now))
    if not due:
        return False
    with runtime.db.write() as db:
        for sim in db.scalars(select(Sim).where(Sim.pk.in_(sorted(due)), Sim.status == "ready")
                              .with_for_update(skip_locked=True)):
            service.change_status(db, runtime, sim, "active")
    return True


def activate_ready_sims_due(runtime: Runtime, now: datetime) -> datetime | None:
    """The first moment after `now` that a ready SIM's 3 months are up."""
    with runtime.db.read() as db:
        return months_due(db.scalars(
            select(Sim.date_ready)
            .where(Sim.status == "ready",
                   Sim.date_ready > months_after_bound(now, billing.READY_MONTHS))
            .order_by(Sim.date_ready).limit(BATCH)), billing.READY_MONTHS, now)


def _sms_deliverable(smsc: bool = False) -> Select:
    """Queued to-SIM SMS Commands that can move on: the network says the SIM's device is
    attached, or they can never be delivered (SIM gone or no longer ready/active). With an
    SMSC (`smsc`), only the undeliverable ones, a SIM without an MSISDN among them: the SMPP
    link (network/smpp.py) submits the others."""
    undeliverable = or_(Sim.pk.is_(None), Sim.status.not_in(service.CONNECTED),
                        *([Sim.msisdn.is_(None)] if smsc else []))
    return (select(SmsCommand, Sim)
            .outerjoin(Sim, Sim.sid == SmsCommand.sim_sid)
            .outerjoin(SimState, SimState.sim_sid == SmsCommand.sim_sid)
            .where(SmsCommand.status == "queued", SmsCommand.direction == "to_sim",
                   undeliverable if smsc else or_(undeliverable, SimState.attached.is_(True))))


def deliver_sms_commands(runtime: Runtime) -> bool:
    """queued → sent → delivered once the device is attached, or failed when the SIM can no
    longer take commands."""
    smsc = runtime.settings.smpp is not None
    if not _any(runtime, _sms_deliverable(smsc).with_only_columns(SmsCommand.pk)):
        return False
    with runtime.db.write() as db:
        rows = db.execute(_sms_deliverable(smsc).order_by(SmsCommand.pk).limit(BATCH)
                          .with_for_update(of=SmsCommand, skip_locked=True)).all()
        for command, sim in rows:
            if sim is None or sim.status not in service.CONNECTED or smsc:
                service.set_command_status(db, runtime, command, "failed", sim)
                continue
            acknowledged = devices.gateway.deliver(sim.sid, command.payload)
            if service.set_command_status(db, runtime, command, "sent", sim):
                service.set_command_status(db, runtime, command,
                                           "delivered" if acknowledged else "failed", sim)
    return bool(rows)


def _ip_sendable(now: datetime) -> Select:
    """Queued to-SIM IP Commands that can move on: their SIM has a data session, or they can
    never be sent (SIM gone or no longer ready/active, or queued too long)."""
    return (select(IpCommand, Sim).outerjoin(Sim, Sim.sid == IpCommand.sim_sid)
            .where(IpCommand.status == "queued", IpCommand.direction == "to_sim",
                   or_(Sim.pk.is_(None), Sim.status.not_in(service.CONNECTED),
                       Sim.ip_address.is_not(None),
                       IpCommand.date_created <= now - service.IP_COMMAND_TTL)))


def deliver_ip_commands(runtime: Runtime) -> bool:
    """Send queued to-SIM IP Commands as UDP datagrams to the SIM's data-session address (through
    its simulated packet gateway's tunnel, or to a virtual device, for the fleet simulator's
    SIMs: see udp); a SIM without a session keeps its commands queued for a day, then they
    fail."""
    now = runtime.clock.now()
    if not _any(runtime, _ip_sendable(now).with_only_columns(IpCommand.pk)):
        return False
    busy = False
    port = udp.command_port(runtime)
    with runtime.db.write() as db:
        rows = db.execute(_ip_sendable(now).order_by(IpCommand.pk).limit(BATCH)
                          .with_for_update(of=IpCommand, skip_locked=True)).all()
        simulated = _simulated_gateways(db, [sim for _command, sim in rows
                                             if sim is not None and sim.ip_address])
        for command, sim in rows:
            expired = now - command.date_created >= service.IP_COMMAND_TTL
            if sim is None or sim.status not in service.CONNECTED or (
                    sim.ip_address is None and expired):
                busy |= service.set_command_status(db, runtime, command, "failed", sim)
                continue
            if sim.ip_address is None:
                continue
            data = service.payload_bytes(command.payload, command.payload_type)
            gateway = simulated.get(sim.sid)
            if gateway != udp.VIRTUAL:
                try:
                    port.send(sim.ip_address, command.device_port, data,
                              udp.tunnel_endpoint(gateway))
                except OSError:
                    busy |= service.set_command_status(db, runtime, command, "failed", sim,
                                                       device_ip=sim.ip_address)
                    continue
            sent = service.set_command_status(db, runtime, command, "sent", sim,
                                              device_ip=sim.ip_address)
            busy |= sent
            if sent and gateway == udp.VIRTUAL:  # a virtual device got it, and answers
                service.receive_ip(db, runtime, sim, (sim.ip_address, command.device_port),
                                   devices.answer_ip_command(data))
    return busy


def deliver_ip_commands_due(runtime: Runtime, now: datetime) -> datetime | None:
    """The first moment after `now` that a queued to-SIM IP Command has waited too long."""
    with runtime.db.read() as db:
        oldest = db.scalar(select(func.min(IpCommand.date_created)).where(
            IpCommand.status == "queued", IpCommand.direction == "to_sim",
            IpCommand.date_created > now - service.IP_COMMAND_TTL))
    return None if oldest is None else oldest + service.IP_COMMAND_TTL


def _simulated_gateways(db: Session, sims: list[Sim]) -> dict[str, str]:
    """SIM SID → the simulated packet gateway carrying its open data session (the latest with
    the SIM's address), for the SIMs the fleet simulator's devices stand for (see udp)."""
    if not sims:
        return {}
    rows = db.execute(select(DataSession.sim_sid, DataSession.ip_address, DataSession.gateway)
                      .where(DataSession.sim_sid.in_([sim.sid for sim in sims]),
                             DataSession.status == "open",
                             DataSession.gateway.startswith(udp.VIRTUAL))
                      .order_by(DataSession.pk))
    addresses = {sim.sid: sim.ip_address for sim in sims}
    return {sid: gateway for sid, ip, gateway in rows
            if gateway and ip == addresses.get(sid) and (gateway == udp.VIRTUAL
                                                         or udp.tunnel_endpoint(gateway))}


def receive_ip_commands(runtime: Runtime) -> bool:
    """Datagrams devices sent to the IP Commands port become `received` IP Commands of the SIM
    whose data session has the sender's address. A datagram tunnelled by a simulated packet gateway
    counts as sent from the address it carries, by the SIM whose open session that gateway
    carries."""
    datagrams = udp.command_port(runtime).receive()
    if not datagrams:
        return False
    direct: list[tuple[bytes, tuple[str, int]]] = []
    tunnelled: list[tuple[bytes, tuple[str, int], str]] = []
    for data, source in datagrams:
        inner = udp.unwrap(data) if ipaddress.ip_address(source[0]).is_loopback else None
        if inner is None:
            direct.append((data, source))
        else:
            tunnelled.append((inner[2], (inner[0], inner[1]), udp.gateway_name(source)))
    with runtime.db.write() as db:
        ips = {source[0] for _data, source in direct}
        sims = {sim.ip_address: sim for sim in db.scalars(
            select(Sim).where(Sim.ip_address.in_(ips), Sim.account_sid.is_not(None)))} if ips else {}
        for data, source in direct:
            sim = sims.get(source[0])
            if sim is not None:  # a datagram from no known session is dropped, as a network would
                service.receive_ip(db, runtime, sim, source, data)
        for data, source, gateway in tunnelled:
            sim = db.scalar(select(Sim).join(DataSession, DataSession.sim_sid == Sim.sid).where(
                DataSession.status == "open", DataSession.gateway == gateway,
                DataSession.ip_address == source[0], Sim.ip_address == source[0],
                Sim.account_sid.is_not(None)).limit(1))
            if sim is not None:
                service.receive_ip(db, runtime, sim, source, data)
    return True


def apply_settings_updates(runtime: Runtime) -> bool:
    """scheduled → in-progress → successful, over the air, once the SIM is connected."""
    applicable = (select(SettingsUpdate).join(Sim, Sim.sid == SettingsUpdate.sim_sid)
                  .where(SettingsUpdate.status.in_(("scheduled", "in-progress")),
                         Sim.status.in_(service.CONNECTED)))
    if not _any(runtime, applicable.with_only_columns(SettingsUpdate.pk)):
        return False
    now = runtime.clock.now()
    busy = False
    with runtime.db.write() as db:
        for settings_update in db.scalars(applicable.order_by(SettingsUpdate.pk).limit(BATCH)
                                          .with_for_update(of=SettingsUpdate, skip_locked=True)):
            if settings_update.status == "scheduled":
                settings_update.status = "in-progress"
            else:
                settings_update.status = "successful"
                settings_update.date_completed = now
            settings_update.date_updated = now
            busy = True
    return busy


MATCHING_ALPHABET = string.ascii_uppercase + string.digits


def _matching_id() -> str:
    return "-".join("".join(secrets.choice(MATCHING_ALPHABET) for _ in range(5))
                    for _ in range(5))


def reserve_esim_profiles(runtime: Runtime) -> bool:
    """new → reserving → available: a Super SIM is made for the profile on the SM-DP+ and
    registered to the account; the CallbackUrl hears of `available` (and only of it, as Twilio
    documents). The SM-DP+ refuses to reserve a profile for an EID that fails its check digits:
    reserving → failed."""
    pending = select(EsimProfile.pk).where(EsimProfile.status.in_(("new", "reserving")))
    if not _any(runtime, pending):
        return False
    now = runtime.clock.now()
    with runtime.db.write() as db:
        profiles = list(db.scalars(select(EsimProfile).where(
            EsimProfile.status.in_(("new", "reserving"))).order_by(EsimProfile.pk).limit(BATCH)
            .with_for_update(skip_locked=True)))
        for profile in profiles:
            profile.date_updated = now
            if profile.status == "new":
                profile.status = "reserving"
                continue
            if profile.eid is not None and service.eid_refused(profile, profile.eid,
                                                               "reservation", now):
                continue  # failed: no Super SIM is made, and the CallbackUrl hears nothing
            [row] = add_sims(db, generated_rows(1), now)
            sim = db.scalar(select(Sim).where(Sim.sid == row["sid"]))
            assert sim is not None
            sim.account_sid, sim.date_registered = profile.account_sid, now
            profile.sim_sid, profile.iccid = sim.sid, sim.iccid
            profile.smdp_plus_address = service.SMDP_PLUS_ADDRESS
            if profile.generate_matching_id:
                profile.matching_id = _matching_id()
                profile.activation_code = (f"1${service.SMDP_PLUS_ADDRESS.upper()}$"
                                           f"{profile.matching_id}")
            profile.status = "available"
            callbacks.enqueue(db, runtime, profile.account_sid, profile.callback_url,
                              profile.callback_method, service.esim_callback_params(profile),
                              profile.flavour)
    return bool(profiles)


JOBS = [complete_status_changes, activate_ready_sims, deliver_sms_commands, deliver_ip_commands,
        receive_ip_commands, apply_settings_updates, reserve_esim_profiles]
NEXT_DUE = [activate_ready_sims_due, deliver_ip_commands_due]
