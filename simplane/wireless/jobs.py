"""Wireless background jobs: command delivery, connectivity resets and status timers."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Select, func, or_, select, update

from simplane.core.clock import months_after_bound, months_bound, months_due, months_passed
from simplane.network import disconnects
from simplane.network.models import SimState, SimUsageHour
from simplane.wireless import gateway as gw
from simplane.wireless import service
from simplane.wireless.models import Command, RatePlan, Sim

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

BATCH = 200


def _deliverable(smsc: bool = False) -> Select:
    """Queued to-SIM commands that can move on: their device is attached, or they can no longer
    be delivered (SIM gone, not ready/active, messaging disabled by its rate plan). With an
    SMSC (`smsc`), only the undeliverable ones, a SIM without an MSISDN among them: the SMPP
    link (network/smpp.py) submits the others."""
    undeliverable = or_(Sim.pk.is_(None), Sim.status.not_in(service.CAN_TAKE_COMMANDS),
                        RatePlan.messaging_enabled.is_not(True),
                        *([Sim.msisdn.is_(None)] if smsc else []))
    return (select(Command, Sim, undeliverable.label("undeliverable"))
            .outerjoin(Sim, Sim.sid == Command.sim_sid)
            .outerjoin(RatePlan, RatePlan.pk == Sim.rate_plan_pk)
            .outerjoin(SimState, SimState.sim_sid == Command.sim_sid)
            .where(Command.status == "queued", Command.direction == "to_sim",
                   undeliverable if smsc else or_(undeliverable, SimState.attached.is_(True))))


def deliver_commands(runtime: Runtime) -> bool:
    """queued → sent → delivered (when a receipt was asked for) once the device is attached, or
    failed when the SIM can no longer take commands."""
    smsc = runtime.settings.smpp is not None
    if not _any(runtime, _deliverable(smsc).with_only_columns(Command.pk)):
        return False
    moved = False
    with runtime.db.write() as db:
        # Several workers on PostgreSQL: each command goes to the gateway from one of them only.
        rows = db.execute(_deliverable(smsc).order_by(Command.pk).limit(BATCH)
                          .with_for_update(of=Command, skip_locked=True)).all()
        for command, sim, undeliverable in rows:
            if undeliverable:
                service.set_command_status(db, runtime, command, "failed", final=True)
                moved = True
                continue
            acknowledged = gw.gateway.deliver(sim, command)
            if acknowledged is None:  # the device has not taken it yet
                continue
            moved = True
            receipt = command.delivery_receipt_requested
            if not service.set_command_status(db, runtime, command, "sent", final=not receipt):
                continue
            if receipt:
                service.set_command_status(db, runtime, command,
                                           "delivered" if acknowledged else "failed", final=True)
    return moved


def finish_resets(runtime: Runtime) -> bool:
    """A reset completes once the packet gateway acknowledged the end of the SIM's sessions
    (their Disconnect-Requests are no longer pending) and the device gateway reset it."""
    if not _any(runtime, select(Sim.pk).where(Sim.reset_status == "resetting")):
        return False
    with runtime.db.write() as db:
        sims = list(db.scalars(select(Sim).where(Sim.reset_status == "resetting").limit(BATCH)))
        waiting = disconnects.pending(db, {sim.sid for sim in sims})
        for sim in sims:
            if sim.sid not in waiting and gw.gateway.reset(sim):
                db.execute(update(Sim).where(Sim.pk == sim.pk, Sim.reset_status == "resetting")
                           .values(reset_status=None, date_updated=runtime.clock.now()))
    return len(waiting) < len(sims)


def status_timers(runtime: Runtime) -> bool:
    """ready → active after 3 months or 250 KB of data; deactivated → canceled after 72 hours.
    One read finds the SIMs that are due; the write lock is taken only when there are some."""
    now = runtime.clock.now()
    used = (select(func.coalesce(func.sum(SimUsageHour.upload + SimUsageHour.download), 0))
            .where(SimUsageHour.sim_sid == Sim.sid).scalar_subquery())  # all while ready
    # The longest ready first: once one is not due, no later one is.
    ready_old = (select(Sim.pk, Sim.date_status_changed)
                 .where(Sim.status == "ready", Sim.date_status_changed <= months_bound(
                     now, service.READY_MONTHS))
                 .order_by(Sim.date_status_changed).limit(BATCH))
    with runtime.db.read() as db:
        due = dict.fromkeys(db.scalars(select(Sim.pk).where(Sim.status == "ready", used >= service.READY_DATA_ALLOWANCE).limit(BATCH)), "active")
        due.update((pk, "active") for pk, since in db.execute(ready_old)
                   if months_passed(since, service.READY_MONTHS, now))
        due.update((pk, "canceled") for pk in db.scalars(select(Sim.pk).where(
            Sim.status == "deactivated",
            Sim.date_status_changed <= now - service.DEACTIVATED_TO_CANCELED_AFTER)
            .limit(BATCH)))
    if not due:
        return False
    busy = False
    with runtime.db.write() as db:
        for sim in db.scalars(select(Sim).where(Sim.pk.in_(sorted(due)))):
            final = due[sim.pk]
            if sim.status == ("ready" if final == "active" else "deactivated"):  # still due
                service.change_status(db, runtime, sim, final, sim.status_callback_url,
                                      sim.status_callback_method, sim.status_callback_flavour)
                busy = True
    return busy


def status_timers_due(runtime: Runtime, now: datetime) -> datetime | None:
    """The first moment after `now` that `status_timers` will have a SIM to move."""
    with runtime.db.read() as db:
        ready = months_due(db.scalars(
            select(Sim.date_status_changed)
            .where(Sim.status == "ready",
                   Sim.date_status_changed > months_after_bound(now, service.READY_MONTHS))
            .order_by(Sim.date_status_changed).limit(BATCH)), service.READY_MONTHS, now)
        deactivated = db.scalar(select(func.min(Sim.date_status_changed)).where(
            Sim.status == "deactivated",
            Sim.date_status_changed > now - service.DEACTIVATED_TO_CANCELED_AFTER))
    if deactivated is not None:
        canceled = deactivated + service.DEACTIVATED_TO_CANCELED_AFTER
        return canceled if ready is None else min(ready, canceled)
    return ready


def _any(runtime: Runtime, stmt: Select) -> bool:
    """A cheap read first, so that an idle worker never takes the write lock."""
    with runtime.db.read() as db:
        return db.execute(stmt.limit(1)).first() is not None


JOBS = [deliver_commands, finish_resets, status_timers]
NEXT_DUE = [status_timers_due]
