"""Wireless v1 routes and representations, one handler per operation of the spec."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from operator import attrgetter
from typing import Any

import orjson
from sqlalchemy import Select, Text, bindparam, cast, literal_column, select

from simplane.core.api import Ctx, ProductAPI
from simplane.core.clock import iso
from simplane.core.db import Prepared, json_object, json_text, twilio_time
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


# The SIM's columns that sim_json shows, in the order of SIM_ROW's (and its own) fields.
SIM_COLUMNS = (
    "sid", "unique_name", "account_sid", "friendly_name", "iccid", "e_id", "status",
    "reset_status", "commands_callback_url", "commands_callback_method", "sms_fallback_method",
    "sms_fallback_url", "sms_method", "sms_url", "voice_fallback_method", "voice_fallback_url",
    "voice_method", "voice_url", "date_created", "date_updated", "ip_address")
_sim_values = attrgetter(*SIM_COLUMNS)


def sim_json(ctx: Ctx, sim: Sim | Sequence[Any], rate_plan_sid: str | None) -> dict:
    """A SIM (an ORM object, or a row of SIM_ROW, its timestamps already text) as Twilio shows
    it. Built from a tuple of its values, which a row already is: 50 of them are a page."""
    v = _sim_values(sim) if isinstance(sim, Sim) else sim
    created, updated = v[18], v[19]
    url = f"{ctx.root}/v1/Sims/{v[0]}"
    return {
        "sid": v[0], "unique_name": v[1], "account_sid": v[2], "rate_plan_sid": rate_plan_sid,
        "friendly_name": v[3], "iccid": v[4], "e_id": v[5], "status": v[6],
        "reset_status": v[7], "commands_callback_url": v[8], "commands_callback_method": v[9],
        "sms_fallback_method": v[10], "sms_fallback_url": v[11], "sms_method": v[12],
        "sms_url": v[13], "voice_fallback_method": v[14], "voice_fallback_url": v[15],
        "voice_method": v[16], "voice_url": v[17],
        "date_created": created if created.__class__ is str else iso(created),
        "date_updated": updated if updated.__class__ is str else iso(updated),
        "url": url,
        "links": {
            "data_sessions": f"{url}/DataSessions",
            "rate_plan": f"{ctx.root}/v1/RatePlans/{rate_plan_sid}" if rate_plan_sid else None,
            "usage_records": f"{url}/UsageRecords",
        },
        "ip_address": v[20],
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


PLAN_SID_OF = Prepared(select(RatePlan.sid).where(RatePlan.pk == bindparam("pk")))


def _plan_sid(ctx: Ctx, sim: Sim) -> str | None:
    if sim.rate_plan_pk is None:
        return None
    rows = PLAN_SID_OF.rows(ctx.db, {"pk": sim.rate_plan_pk})
    return rows[0][0] if rows else None


# --- Sims ------------------------------------------------------------------------------------

# What sim_json shows of a SIM, its plan's SID and its key: plain rows, no ORM identity.
# Timestamps formatted by the database (twilio_time).
SIM_ROW = select(*(twilio_time(Sim.__table__.c[name]).label(name)
                   if name.startswith("date_") else Sim.__table__.c[name]
                   for name in SIM_COLUMNS),
                 RatePlan.sid.label("rate_plan_sid"), Sim.pk
                 ).outerjoin(RatePlan, RatePlan.pk == Sim.rate_plan_pk)

PLAN_SID = len(SIM_COLUMNS)  # where SIM_ROW has the plan's SID

# SIM_ROW's columns, of a SIM being updated.
SIM_RETURNING = (*SIM_ROW.selected_columns[:PLAN_SID],
                 select(RatePlan.sid).where(RatePlan.pk == Sim.rate_plan_pk)
                 .scalar_subquery().label("rate_plan_sid"), Sim.pk)



def _sim_json_sql() -> Any:
    """sim_json's object, built by the database (json_object) with the URL root as the bind
    parameter `root`: the same keys, in the same order."""
    root = cast(bindparam("root"), Text)
    c = SIM_ROW.selected_columns
    url = root + literal_column("'/v1/Sims/'") + Sim.sid
    fields: list[tuple[str, Any]] = []
    for name in SIM_COLUMNS:
        if name == "ip_address":
            fields += [("url", url), ("links", json_object(
                ("data_sessions", url + literal_column("'/DataSessions'")),
                ("rate_plan", root + literal_column("'/v1/RatePlans/'") + RatePlan.sid),
                ("usage_records", url + literal_column("'/UsageRecords'"))))]
        fields.append((name, c[name]))
        if name == "account_sid":
            fields.append(("rate_plan_sid", RatePlan.sid))
    return json_text(json_object(*fields))


# A SIM as sim_json shows it (Twilio's flavour), as JSON text, and its key.
SIM_JSON_ROW = select(_sim_json_sql(), Sim.pk).outerjoin(RatePlan, RatePlan.pk == Sim.rate_plan_pk)

# By SID (True) or by unique name (False), built once.
FETCH_SIM = {
    by_sid: Prepared(SIM_ROW.where(Sim.account_sid == bindparam("account_sid"),
                                   (Sim.sid if by_sid else Sim.unique_name) == bindparam("key")))
    for by_sid in (True, False)
}


@api.operation("FetchSim", inline=True)
def fetch_sim(ctx: Ctx) -> dict:
    """The hottest read: one query (the SIM and its plan's SID), plain rows, no ORM identity."""
    key = ctx.path["Sid"]
    rows = FETCH_SIM[looks_like_sid(key, "DE")].rows(ctx.db, {"account_sid": ctx.account_sid,
                                                              "key": key})
    if not rows:
        raise not_found("Sim", key)
    return sim_json(ctx, rows[0], rows[0][PLAN_SID])


# The filters of ListSim: the parameter, and the column it is compared with.
SIM_FILTERS = (("Status", Sim.status), ("Iccid", Sim.iccid), ("EId", Sim.e_id),
               ("SimRegistrationCode", Sim.registration_code), ("RatePlan", Sim.rate_plan_pk))


@cache
def list_sims_statement(filters: tuple[str, ...], as_json: bool = False) -> Select:
    """The SIMs of an account with these filters, as bind parameters of the same names: built
    once for each combination. Rows of SIM_ROW, or `as_json` of SIM_JSON_ROW."""
    stmt = (SIM_JSON_ROW if as_json else SIM_ROW).where(Sim.account_sid == bindparam("account_sid"))
    for name, column in SIM_FILTERS:
        if name in filters:
            stmt = stmt.where(column == bindparam(name))
    return stmt


@api.operation("ListSim", inline=True)
def list_sims(ctx: Ctx) -> dict:
    p = ctx.params
    values: dict[str, Any] = {"account_sid": ctx.account_sid}
    for name, _column in SIM_FILTERS:
        if name in p:
            values[name] = p[name]
    if "RatePlan" in p:
        plan = service.get_by_key(ctx.db, RatePlan, ctx.account_sid, p["RatePlan"], "WP")
        if plan is None:
            return empty_page(ctx)
        values["RatePlan"] = plan.pk
    filters = tuple(name for name in values if name != "account_sid")
    if ctx.flavour == "twilio" and ctx.runtime.db.is_sqlite:
        # Sent as SQLite wrote it (a flavour reshapes dicts; PostgreSQL's json_build_object
        # takes longer than sim_json).
        values["root"] = ctx.root
        return paginate(ctx, list_sims_statement(filters, True), Sim.pk, _fragment, rows=True,
                        params=values)
    return paginate(ctx, list_sims_statement(filters), Sim.pk,
                    lambda row: sim_json(ctx, row, row[PLAN_SID]), rows=True, params=values)


def _fragment(row: Sequence[Any]) -> Any:
    return orjson.Fragment(row[0])


def _one_statement(params: Any) -> bool:
    """Whether UpdateSim with these parameters is one UPDATE (update_sim_fields without a
    UniqueName, whose check reads first)."""
    return service.OWN_FIELDS.issuperset(name for name, _value in params.items()) \
        and "UniqueName" not in params


@api.operation("UpdateSim", inline=True, one_statement=_one_statement)
def update_sim(ctx: Ctx) -> dict:
    if service.OWN_FIELDS.issuperset(name for name, _value in ctx.params.items()):
        return update_sim_fields(ctx)
    sim = service.get_sim(ctx.db, ctx.account_sid, ctx.path["Sid"])
    service.update_sim(ctx.db, ctx.runtime, ctx.account_sid, sim, ctx.params, ctx.flavour)
    ctx.db.flush()
    return sim_json(ctx, sim, _plan_sid(ctx, sim))


def update_sim_fields(ctx: Ctx) -> dict:
    """UpdateSim of the SIM's own fields alone (the usual one): one UPDATE, which returns the
    SIM as FetchSim reads it."""
    key = ctx.path["Sid"]
    row = service.update_sim_fields(ctx.db, ctx.runtime, ctx.account_sid, key, ctx.params,
                                    SIM_RETURNING, ctx.flavour)
    if row is None:
        raise not_found("Sim", key)
    return sim_json(ctx, row, row[PLAN_SID])


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
