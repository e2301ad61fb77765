"""Wireless v1 routes and representations, one handler per operation of the spec."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, bindparam, select

from simplane.core.api import Ctx, ProductAPI
from simplane.core.clock import iso
from simplane.core.errors import not_found
from simplane.core.lookups import get_by_sid
from simplane.core.paging import empty_page, paginate
from simplane.core.sids import looks_like_sid
from simplane.wireless import notifications, service, usage
from simplane.wireless.models import Command, RatePlan, Sim

api = ProductAPI("wireless")


# --- representations -------------------------------------------------------------------------

def rate_plan_json(ctx: Ctx, plan: RatePlan) -> dict:
    body = {
        "sid": plan.sid, "unique_name": plan.unique_name, "account_sid": plan.account_sid,
        "friendly_name": plan.friendly_name, "data_enabled": plan.data_enabled,
        "data_metering": plan.data_metering, "data_limit": plan.data_limit,
        "messaging_enabled": plan.messaging_enabled, "voice_enabled": plan.voice_enabled,
        "national_roaming_enabled": plan.national_roaming_enabled,
        "national_roaming_data_limit": plan.national_roaming_data_limit,
        "international_roaming": list(plan.international_roaming),
        "international_roaming_data_limit": plan.international_roaming_data_limit,
        "date_created": iso(plan.date_created), "date_updated": iso(plan.date_updated),
        "url": ctx.url(f"/RatePlans/{plan.sid}"),
    }
    if ctx.flavour == "kore":  # the fields KORE's RatePlan adds
        body.update(notifications.kore_fields(plan))
    return body


def sim_json(ctx: Ctx, sim: Sim | Row[*tuple[Any, ...]], rate_plan_sid: str | None) -> dict:
    url = ctx.url(f"/Sims/{sim.sid}")
    return {
        "sid": sim.sid, "unique_name": sim.unique_name, "account_sid": sim.account_sid,
        "rate_plan_sid": rate_plan_sid, "friendly_name": sim.friendly_name, "iccid": sim.iccid,
        "e_id": sim.e_id, "status": sim.status, "reset_status": sim.reset_status,
        "commands_callback_url": sim.commands_callback_url,
        "commands_callback_method": sim.commands_callback_method,
        "sms_fallback_method": sim.sms_fallback_method, "sms_fallback_url": sim.sms_fallback_url,
        "sms_method": sim.sms_method, "sms_url": sim.sms_url,
        "voice_fallback_method": sim.voice_fallback_method,
        "voice_fallback_url": sim.voice_fallback_url, "voice_method": sim.voice_method,
        "voice_url": sim.voice_url,
        "date_created": iso(sim.date_created), "date_updated": iso(sim.date_updated),
        "url": url,
        "links": {
            "data_sessions": f"{url}/DataSessions",
            "rate_plan": ctx.url(f"/RatePlans/{rate_plan_sid}") if rate_plan_sid else None,
            "usage_records": f"{url}/UsageRecords",
        },
        "ip_address": sim.ip_address,
    }


def command_json(ctx: Ctx, command: Command) -> dict:
    return {
        "sid": command.sid, "account_sid": command.account_sid, "sim_sid": command.sim_sid,
        "command": command.command, "command_mode": command.command_mode,
        "transport": command.transport,
        "delivery_receipt_requested": command.delivery_receipt_requested,
        "status": command.status, "direction": command.direction,
        "date_created": iso(command.date_created), "date_updated": iso(command.date_updated),
        "url": ctx.url(f"/Commands/{command.sid}"),
    }


def _plan_sid(ctx: Ctx, sim: Sim) -> str | None:
    if sim.rate_plan_pk is None:
        return None
    return ctx.db.scalar(select(RatePlan.sid).where(RatePlan.pk == sim.rate_plan_pk))


# --- Sims ------------------------------------------------------------------------------------

# By SID (True) or by unique name (False): the SIM's columns and its plan's SID, built once.
FETCH_SIM = {
    by_sid: select(*Sim.__table__.c, RatePlan.sid.label("rate_plan_sid"))
    .outerjoin(RatePlan, RatePlan.pk == Sim.rate_plan_pk)
    .where(Sim.account_sid == bindparam("account_sid"),
           (Sim.sid if by_sid else Sim.unique_name) == bindparam("key"))
    for by_sid in (True, False)
}


@api.operation("FetchSim")
def fetch_sim(ctx: Ctx) -> dict:
    """The hottest read: one query (the SIM and its plan's SID), plain rows, no ORM identity."""
    key = ctx.path["Sid"]
    row = ctx.db.connection().execute(FETCH_SIM[looks_like_sid(key, "DE")],
                                      {"account_sid": ctx.account_sid, "key": key}).first()
    if row is None:
        raise not_found("Sim", key)
    return sim_json(ctx, row, row.rate_plan_sid)


@api.operation("ListSim")
def list_sims(ctx: Ctx) -> dict:
    p = ctx.params
    stmt = select(Sim).where(Sim.account_sid == ctx.account_sid)
    if "Status" in p:
        stmt = stmt.where(Sim.status == p["Status"])
    if "Iccid" in p:
        stmt = stmt.where(Sim.iccid == p["Iccid"])
    if "EId" in p:
        stmt = stmt.where(Sim.e_id == p["EId"])
    if "SimRegistrationCode" in p:
        stmt = stmt.where(Sim.registration_code == p["SimRegistrationCode"])
    if "RatePlan" in p:
        plan = service.get_by_key(ctx.db, RatePlan, ctx.account_sid, p["RatePlan"], "WP")
        if plan is None:
            return empty_page(ctx)
        stmt = stmt.where(Sim.rate_plan_pk == plan.pk)
    plan_sids: dict[int, str] = {}

    def render(sim: Sim) -> dict:
        if sim.rate_plan_pk is not None and sim.rate_plan_pk not in plan_sids:
            plan_sids[sim.rate_plan_pk] = _plan_sid(ctx, sim)  # type: ignore[assignment]
        return sim_json(ctx, sim, plan_sids.get(sim.rate_plan_pk))  # type: ignore[arg-type]

    return paginate(ctx, stmt, Sim.pk, render)


@api.operation("UpdateSim")
def update_sim(ctx: Ctx) -> dict:
    sim = service.get_sim(ctx.db, ctx.account_sid, ctx.path["Sid"])
    service.update_sim(ctx.db, ctx.runtime, ctx.account_sid, sim, ctx.params, ctx.flavour)
    ctx.db.flush()
    return sim_json(ctx, sim, _plan_sid(ctx, sim))


@api.operation("DeleteSim")
def delete_sim(ctx: Ctx) -> None:
    service.delete_sim(ctx.db, service.get_sim(ctx.db, ctx.account_sid, ctx.path["Sid"]))


# --- RatePlans -------------------------------------------------------------------------------

@api.operation("CreateRatePlan")
def create_rate_plan(ctx: Ctx) -> dict:
    return rate_plan_json(ctx, service.create_rate_plan(ctx.db, ctx.account_sid, ctx.params,
                                                        ctx.now(), ctx.flavour,
                                                        ctx.runtime.outbound))


@api.operation("FetchRatePlan")
def fetch_rate_plan(ctx: Ctx) -> dict:
    return rate_plan_json(ctx, service.get_rate_plan(ctx.db, ctx.account_sid, ctx.path["Sid"]))


@api.operation("ListRatePlan")
def list_rate_plans(ctx: Ctx) -> dict:
    stmt = select(RatePlan).where(RatePlan.account_sid == ctx.account_sid)
    return paginate(ctx, stmt, RatePlan.pk, lambda plan: rate_plan_json(ctx, plan))


@api.operation("UpdateRatePlan")
def update_rate_plan(ctx: Ctx) -> dict:
    plan = service.get_rate_plan(ctx.db, ctx.account_sid, ctx.path["Sid"])
    return rate_plan_json(ctx, service.update_rate_plan(ctx.db, plan, ctx.params, ctx.now(),
                                                        ctx.flavour, ctx.runtime.outbound))


@api.operation("DeleteRatePlan")
def delete_rate_plan(ctx: Ctx) -> None:
    service.delete_rate_plan(ctx.db, service.get_rate_plan(ctx.db, ctx.account_sid, ctx.path["Sid"]))


# --- Commands --------------------------------------------------------------------------------

def _get_command(ctx: Ctx) -> Command:
    return get_by_sid(ctx.db, Command, ctx.account_sid, ctx.path["Sid"], "DC", "Command")


@api.operation("CreateCommand")
def create_command(ctx: Ctx) -> dict:
    return command_json(ctx, service.create_command(ctx.db, ctx.runtime, ctx.account_sid,
                                                    ctx.params, ctx.flavour))


@api.operation("FetchCommand")
def fetch_command(ctx: Ctx) -> dict:
    return command_json(ctx, _get_command(ctx))


@api.operation("ListCommand")
def list_commands(ctx: Ctx) -> dict:
    p = ctx.params
    stmt = select(Command).where(Command.account_sid == ctx.account_sid)
    if "Sim" in p:
        sim = service.get_by_key(ctx.db, Sim, ctx.account_sid, p["Sim"], "DE")
        stmt = stmt.where(Command.sim_sid == (sim.sid if sim else p["Sim"]))
    for name, column in (("Status", Command.status), ("Direction", Command.direction),
                         ("Transport", Command.transport)):
        if name in p:
            stmt = stmt.where(column == p[name])
    return paginate(ctx, stmt, Command.pk, lambda c: command_json(ctx, c), descending=True)


@api.operation("DeleteCommand")
def delete_command(ctx: Ctx) -> None:
    ctx.db.delete(_get_command(ctx))


# Data sessions and usage records, read from the network's rollups.
api.operation("ListDataSession")(usage.list_data_sessions)
api.operation("ListUsageRecord")(usage.list_usage_records)
api.operation("ListAccountUsageRecord")(usage.list_account_usage_records)
