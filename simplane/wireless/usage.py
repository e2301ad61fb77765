"""Wireless DataSessions and UsageRecords, read from what ingest recorded: sessions, and hourly
usage rollups (never raw history)."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from simplane.core.api import Ctx
from simplane.core.clock import iso
from simplane.core.errors import TwilioError
from simplane.core.paging import envelope, page_size, paginate
from simplane.network.models import AccountUsageHour, DataSession, SimUsageHour
from simplane.network.rollups import spans, usage_window
from simplane.wireless import service

SESSION_WINDOW = timedelta(days=30)
STEPS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}
_TOKEN = re.compile(r"^PA(-?[0-9]{1,12})$")  # a period's start, in seconds (before 1970: negative)


def data_session_json(ctx: Ctx, s: DataSession) -> dict:
    location = {"lat": s.lat, "lon": s.lon} if s.lat is not None and s.lon is not None else {}
    return {
        "sid": s.sid, "sim_sid": s.sim_sid, "account_sid": s.account_sid,
        "radio_link": s.radio_link, "operator_mcc": s.operator_mcc,
        "operator_mnc": s.operator_mnc, "operator_country": s.operator_country,
        "operator_name": s.operator_name, "cell_id": s.cell_id,
        "cell_location_estimate": location, "packets_uploaded": s.packets_up,
        "packets_downloaded": s.packets_down, "last_updated": iso(s.last_updated),
        "start": iso(s.start), "end": iso(s.end), "imei": s.imei,
    }


def list_data_sessions(ctx: Ctx) -> dict:
    """The SIM's sessions of the last 30 days, newest first."""
    sim = service.get_sim(ctx.db, ctx.account_sid, ctx.path["SimSid"])
    since = ctx.now() - SESSION_WINDOW
    stmt = select(DataSession).where(DataSession.sim_sid == sim.sid,
                                     DataSession.account_sid == ctx.account_sid,
                                     DataSession.status != "refused",
                                     or_(DataSession.end.is_(None), DataSession.end >= since))
    return paginate(ctx, stmt, DataSession.pk, lambda s: data_session_json(ctx, s),
                    descending=True)


# --- usage records ---------------------------------------------------------------------------

def _block(up: int, down: int, **extra: object) -> dict:
    return {"billing_units": "USD", "billed": 0, "total": up + down, "upload": up,
            "download": down, "units": "bytes", **extra}


def _commands_block(from_sim: int, to_sim: int, **extra: object) -> dict:
    return {"billing_units": "USD", "billed": 0, "total": from_sim + to_sim, "from_sim": from_sim,
            "to_sim": to_sim, **extra}


def usage_record(start: datetime, end: datetime, usage: dict) -> dict:
    """One period. `usage` maps (roaming class, country) to [upload, download, commands from
    the SIM, commands to the SIM]; data and commands each split home / national roaming /
    international roaming (per country)."""

    def total(roaming: str) -> list[int]:
        return [sum(v[i] for (r, _c), v in usage.items() if r == roaming) for i in range(4)]

    home, national = total("home"), total("national")
    abroad = sorted((c, v) for (r, c), v in usage.items() if r == "international")
    every = [home[i] + national[i] + sum(v[i] for _c, v in abroad) for i in range(4)]
    return {
        "period": {"start": iso(start), "end": iso(end)},
        "commands": _commands_block(
            *every[2:], home=_commands_block(*home[2:]),
            national_roaming=_commands_block(*national[2:]),
            international_roaming=[_commands_block(*v[2:], country=c) for c, v in abroad]),
        "data": _block(
            *every[:2], home=_block(*home[:2]), national_roaming=_block(*national[:2]),
            international_roaming=[_block(*v[:2], country=c) for c, v in abroad]),
    }


def _window(ctx: Ctx) -> tuple[datetime, datetime, str]:
    start, end = usage_window(ctx.params.get("Start"), ctx.params.get("End") or ctx.now(),
                              ("Start", "End"))
    granularity = ctx.params.get("Granularity", "all")
    return start, end, granularity


def _usage_records(ctx: Ctx, table: type[SimUsageHour] | type[AccountUsageHour],
                   owner_column: InstrumentedAttribute[str], owner: str,
                   sim_sid: str | None) -> dict:
    start, end, granularity = _window(ctx)
    periods = spans(start, end, STEPS.get(granularity))
    size = page_size(ctx)
    token = ctx.params.get("PageToken")
    if token:
        match = _TOKEN.match(token)
        if not match:
            raise TwilioError(400, 21481, f"Invalid PageToken: {token!r}")
        after = int(match.group(1))
        periods = [p for p in periods if p[0].timestamp() > after]
    page, more = periods[:size], len(periods) > size
    records = []
    if page:
        lo, hi = page[0][0], page[-1][1]
        if len(page) == 1:  # one period (Granularity=all): the database adds the hours up
            totals = ctx.db.execute(
                select(table.roaming, table.country, func.sum(table.upload),
                       func.sum(table.download), func.sum(table.commands_from_sim),
                       func.sum(table.commands_to_sim))
                .where(owner_column == owner, table.hour >= lo.replace(minute=0, second=0),
                       table.hour < hi)
                .group_by(table.roaming, table.country)).all()
            record = usage_record(lo, hi, {(r[0], r[1]): [int(v or 0) for v in r[2:]]
                                           for r in totals})
            records.append({"sim_sid": sim_sid, "account_sid": ctx.account_sid, **record}
                           if sim_sid else {"account_sid": ctx.account_sid, **record})
        periods = [] if len(page) == 1 else page
        hours = [] if not periods else ctx.db.execute(
            select(table.hour, table.roaming, table.country, table.upload, table.download,
                   table.commands_from_sim, table.commands_to_sim)
            .where(owner_column == owner, table.hour >= lo.replace(minute=0, second=0),
                   table.hour < hi)).all()
        # Each hourly row counts in the one period it falls in (periods are contiguous).
        firsts = [p_start.replace(minute=0, second=0, microsecond=0) for p_start, _ in periods]
        usage: list[dict] = [defaultdict(lambda: [0, 0, 0, 0]) for _ in periods]
        for row in hours:
            at = bisect_right(firsts, row.hour) - 1
            if at >= 0 and row.hour < periods[at][1]:
                bucket = usage[at][(row.roaming, row.country)]
                for i, value in enumerate(row[3:]):
                    bucket[i] += value
        for (p_start, p_end), period_usage in zip(periods, usage, strict=True):
            record = usage_record(p_start, p_end, period_usage)
            records.append({"sim_sid": sim_sid, "account_sid": ctx.account_sid, **record}
                           if sim_sid else {"account_sid": ctx.account_sid, **record})
    next_token = f"PA{int(page[-1][0].timestamp())}" if more else None
    return envelope(ctx, records, size, ctx.params.get("Page", 0), next_token=next_token)


def list_usage_records(ctx: Ctx) -> dict:
    sim = service.get_sim(ctx.db, ctx.account_sid, ctx.path["SimSid"])
    return _usage_records(ctx, SimUsageHour, SimUsageHour.sim_sid, sim.sid, sim.sid)


def list_account_usage_records(ctx: Ctx) -> dict:
    return _usage_records(ctx, AccountUsageHour, AccountUsageHour.account_sid, ctx.account_sid,
                          None)

