"""What the console's pages read: SIM lists keyset-paged on the products' indexes, usage from
the hourly rollups (never raw sessions), and the latest sessions, commands and events of an
account or a SIM. Reads only: every change goes through the products' services."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from simplane.core.clock import add_months, utc
from simplane.core.sids import looks_like_sid
from simplane.events.models import EventSink, OutboxEvent
from simplane.network.models import (
    AccountUsageHour,
    DataSession,
    IngestGeneration,
    SimState,
    SimUsageHour,
)
from simplane.supersim.models import Fleet, SmsCommand
from simplane.supersim.models import Sim as SuperSim
from simplane.supersim.models import UsageHour as SuperUsageHour
from simplane.wireless.models import Command, RatePlan
from simplane.wireless.models import Sim as WirelessSim

PAGE = 50
ROAMING = ("home", "national", "international")
CONNECTION_EVENT = "com.twilio.iot.supersim.connection."
PRODUCTS: dict[str, Any] = {"wireless": WirelessSim, "supersim": SuperSim}


def product_of(sid: str) -> str | None:
    if looks_like_sid(sid, "DE"):
        return "wireless"
    if looks_like_sid(sid, "HS"):
        return "supersim"
    return None


# --- SIM lists -------------------------------------------------------------------------------

@dataclass
class SimPage:
    rows: list[Any]
    next_after: int | None  # the `after` of the next page, when there is one


def _prefix(column: Any, text: str) -> Any:
    """Values starting with `text`, as a range the column's index can serve."""
    return and_(column >= text, column < text + "\U0010ffff")


def _matching(stmt: Any, model: Any, product: str, search: str, status: str,
              group_pk: int | None) -> Any:
    """`stmt` narrowed to the SIMs a list shows: `search` is a SID, an ICCID (or its start) or a
    unique name (or its start); `group_pk` a rate plan (Wireless) or a Fleet (Super SIM)."""
    group_column = model.rate_plan_pk if product == "wireless" else model.fleet_pk
    search = search.strip()
    if search:
        if looks_like_sid(search, "DE" if product == "wireless" else "HS"):
            stmt = stmt.where(model.sid == search)
        elif search.isdigit():
            stmt = stmt.where(or_(_prefix(model.iccid, search), _prefix(model.unique_name, search)))
        else:
            stmt = stmt.where(_prefix(model.unique_name, search))
    if status:
        stmt = stmt.where(model.status == status)
    if group_pk is not None:
        stmt = stmt.where(group_column == group_pk)
    return stmt


def list_sims(db: Session, account_sid: str, product: str, search: str = "", status: str = "",
              group_pk: int | None = None, after: int | None = None) -> SimPage:
    """A page of an account's SIMs, newest first."""
    model = PRODUCTS[product]
    group: Any = RatePlan if product == "wireless" else Fleet
    group_column = model.rate_plan_pk if product == "wireless" else model.fleet_pk
    stmt = (select(model.pk, model.sid, model.iccid, model.unique_name, model.status,
                   group.sid.label("group_sid"), group.unique_name.label("group_name"))
            .outerjoin(group, group.pk == group_column)
            .where(model.account_sid == account_sid))
    stmt = _matching(stmt, model, product, search, status, group_pk)
    if after is not None:
        stmt = stmt.where(model.pk < after)
    rows = list(db.execute(stmt.order_by(model.pk.desc()).limit(PAGE + 1)))
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return SimPage(rows, rows[-1].pk if more else None)


def bulk_targets(db: Session, account_sid: str, product: str, search: str, status: str,
                 group_pk: int | None, from_statuses: set[str] | None, limit: int,
                 grouped: bool = False) -> Any:
    """The SIMs a bulk action on a list touches: those the list matches (in any page) whose
    status allows the change (`from_statuses`, None for any), at most `limit`, oldest first."""
    model = PRODUCTS[product]
    stmt = _matching(select(model).where(model.account_sid == account_sid), model, product,
                     search, status, group_pk)
    if from_statuses is not None:
        stmt = stmt.where(model.status.in_(sorted(from_statuses)))
    if grouped:  # only SIMs with a rate plan (Fleet): those that may become active
        stmt = stmt.where((model.rate_plan_pk if product == "wireless" else model.fleet_pk)
                          .is_not(None))
    return stmt.order_by(model.pk).limit(limit)


def count(db: Session, stmt: Any) -> int:
    return int(db.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


def groups(db: Session, account_sid: str, product: str) -> list[Any]:
    """The account's rate plans (Wireless) or Fleets (Super SIM), for filters and forms."""
    model: Any = RatePlan if product == "wireless" else Fleet
    return list(db.scalars(select(model).where(model.account_sid == account_sid)
                           .order_by(model.pk).limit(500)))


def status_counts(db: Session, account_sid: str) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for product, model in PRODUCTS.items():
        rows = db.execute(select(model.status, func.count()).where(model.account_sid == account_sid)
                          .group_by(model.status))
        counts[product] = {status: int(n) for status, n in rows}
    return counts


# --- usage -----------------------------------------------------------------------------------

@dataclass
class Series:
    """Bytes per period, stacked by roaming class: what a usage chart draws."""

    granularity: str  # hourly | daily
    starts: list[datetime]
    bytes: dict[str, list[int]]  # roaming class (or "data" for Super SIM) -> one per start

    def chart(self) -> str:
        """The series as the chart script reads it (JSON in a data attribute)."""
        return orjson.dumps({"granularity": self.granularity,
                             "x": [int(s.timestamp()) for s in self.starts],
                             "series": self.bytes}).decode()

    def rows(self) -> list[tuple[datetime, list[int]]]:
        names = list(self.bytes)
        return [(start, [self.bytes[n][i] for n in names]) for i, start in enumerate(self.starts)]

    def total(self) -> int:
        return sum(sum(values) for values in self.bytes.values())


def _periods(now: datetime, granularity: str) -> list[datetime]:
    hour = utc(now).replace(minute=0, second=0, microsecond=0)
    if granularity == "hourly":
        return [hour - timedelta(hours=n) for n in range(47, -1, -1)]
    day = hour.replace(hour=0)
    return [day - timedelta(days=n) for n in range(29, -1, -1)]


def _bucket(hour: datetime, granularity: str) -> datetime:
    hour = utc(hour)
    return hour if granularity == "hourly" else hour.replace(hour=0)


def _series(rows: Any, periods: list[datetime], granularity: str, names: tuple[str, ...]
            ) -> Series:
    index = {start: i for i, start in enumerate(periods)}
    values = {name: [0] * len(periods) for name in names}
    for hour, name, amount in rows:
        i = index.get(_bucket(hour, granularity))
        if i is not None and name in values:
            values[name][i] += int(amount or 0)
    return Series(granularity, periods, values)


def _day(db: Session, column: Any) -> Any:
    """The UTC day of a rollup hour as YYYY-MM-DD, computed by the database (so that a month of
    hours comes back as 30 rows, not 720)."""
    if db.get_bind().dialect.name == "sqlite":  # stored as "YYYY-MM-DD HH:MM:SS…", UTC
        return func.substr(column, 1, 10)
    return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")


def _daily(rows: Any, periods: list[datetime], names: tuple[str, ...]) -> Series:
    index = {start.strftime("%Y-%m-%d"): i for i, start in enumerate(periods)}
    values = {name: [0] * len(periods) for name in names}
    for day, name, amount in rows:
        i = index.get(day)
        if i is not None and name in values:
            values[name][i] += int(amount or 0)
    return Series("daily", periods, values)


def sim_usage(db: Session, product: str, sim_sid: str, now: datetime, granularity: str) -> Series:
    """A SIM's data use for the last 48 hours or 30 days, from the hourly rollups."""
    periods = _periods(now, granularity)
    start = periods[0]
    if product == "wireless":
        if granularity == "daily":
            day = _day(db, SimUsageHour.hour)
            return _daily(db.execute(
                select(day, SimUsageHour.roaming,
                       func.sum(SimUsageHour.upload + SimUsageHour.download))
                .where(SimUsageHour.sim_sid == sim_sid, SimUsageHour.hour >= start)
                .group_by(day, SimUsageHour.roaming)), periods, ROAMING)
        rows = db.execute(
            select(SimUsageHour.hour, SimUsageHour.roaming,
                   SimUsageHour.upload + SimUsageHour.download)
            .where(SimUsageHour.sim_sid == sim_sid, SimUsageHour.hour >= start))
        return _series(rows, periods, granularity, ROAMING)
    rows = db.execute(select(SuperUsageHour.hour, SuperUsageHour.sim_sid, SuperUsageHour.data_total)
                      .where(SuperUsageHour.sim_sid == sim_sid, SuperUsageHour.hour >= start))
    return _series(((hour, "data", amount) for hour, _sid, amount in rows), periods, granularity,
                   ("data",))


def account_usage(db: Session, account_sid: str, now: datetime, granularity: str) -> Series:
    """An account's Wireless data use by hour today (granularity hourly) or by day this month
    (daily), from the account rollups."""
    today = utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity == "hourly":
        periods = [today + timedelta(hours=n) for n in range(24)]
    else:
        first = today.replace(day=1)
        days = (add_months(first, 1) - first).days  # the whole month, its days to come at 0
        periods = [first + timedelta(days=n) for n in range(days)]
        day = _day(db, AccountUsageHour.hour)
        return _daily(db.execute(
            select(day, AccountUsageHour.roaming,
                   func.sum(AccountUsageHour.upload + AccountUsageHour.download))
            .where(AccountUsageHour.account_sid == account_sid, AccountUsageHour.hour >= first)
            .group_by(day, AccountUsageHour.roaming)), periods, ROAMING)
    rows = db.execute(
        select(AccountUsageHour.hour, AccountUsageHour.roaming,
               func.sum(AccountUsageHour.upload + AccountUsageHour.download))
        .where(AccountUsageHour.account_sid == account_sid, AccountUsageHour.hour >= periods[0])
        .group_by(AccountUsageHour.hour, AccountUsageHour.roaming))
    return _series(rows, periods, granularity, ROAMING)


def top_sims(db: Session, account_sid: str, limit: int = 10) -> list[Any]:
    """The SIMs that used the most data in their current billing period (what ingest keeps per
    SIM for its plan's limits, so no usage rows are summed)."""
    used = SimState.used_home + SimState.used_national + SimState.used_international
    return list(db.execute(select(SimState.sim_sid, SimState.period, used.label("used"))
                           .where(SimState.account_sid == account_sid, used > 0)
                           .order_by(used.desc()).limit(limit)))


# --- sessions, commands, events --------------------------------------------------------------

def open_sessions(db: Session, account_sid: str) -> int:
    return int(db.scalar(select(func.count()).select_from(DataSession)
                         .where(DataSession.account_sid == account_sid,
                                DataSession.status == "open")) or 0)


def sim_sessions(db: Session, account_sid: str, sim_sid: str, limit: int = 20) -> list[DataSession]:
    return list(db.scalars(select(DataSession)
                           .where(DataSession.sim_sid == sim_sid,
                                  DataSession.account_sid == account_sid,
                                  DataSession.status != "refused")
                           .order_by(DataSession.pk.desc()).limit(limit)))


def sim_locations(db: Session, account_sid: str, sim_sid: str, limit: int = 100) -> list[Any]:
    """Where the SIM's latest sessions were served from (those whose cell was located)."""
    return list(db.execute(select(DataSession.lat, DataSession.lon, DataSession.start,
                                  DataSession.cell_id, DataSession.operator_name)
                           .where(DataSession.sim_sid == sim_sid,
                                  DataSession.account_sid == account_sid,
                                  DataSession.lat.is_not(None), DataSession.lon.is_not(None))
                           .order_by(DataSession.pk.desc()).limit(limit)))


def sim_commands(db: Session, account_sid: str, product: str, sim_sid: str, limit: int = 20
                 ) -> list[Any]:
    if product == "wireless":
        return list(db.execute(select(Command.sid, Command.command.label("body"), Command.status,
                                      Command.direction, Command.date_created)
                               .where(Command.account_sid == account_sid,
                                      Command.sim_sid == sim_sid)
                               .order_by(Command.pk.desc()).limit(limit)))
    return list(db.execute(select(SmsCommand.sid, SmsCommand.payload.label("body"),
                                  SmsCommand.status, SmsCommand.direction,
                                  SmsCommand.date_created)
                           .where(SmsCommand.account_sid == account_sid,
                                  SmsCommand.sim_sid == sim_sid)
                           .order_by(SmsCommand.pk.desc()).limit(limit)))


@dataclass
class ConnectionEvent:
    time: str
    type: str  # without the common prefix: attachment.accepted, data-session.started, …
    sim_sid: str | None
    detail: str


def connection_events(db: Session, account_sid: str, sim_sid: str | None = None,
                      limit: int = 20) -> list[ConnectionEvent]:
    """The latest Super SIM Connection Events of the account (or of one SIM), newest first."""
    stmt = select(OutboxEvent.time, OutboxEvent.type, OutboxEvent.subject, OutboxEvent.data).where(
        OutboxEvent.account_sid == account_sid, OutboxEvent.type.startswith(CONNECTION_EVENT))
    if sim_sid is not None:
        stmt = stmt.where(OutboxEvent.subject == sim_sid)
    found = []
    for time, type_, subject, data in db.execute(
            stmt.order_by(OutboxEvent.txid.desc(), OutboxEvent.pk.desc()).limit(limit)):
        facts = orjson.loads(data)
        network = (facts.get("network") or {}).get("friendly_name") or ""
        error = (facts.get("error") or {}).get("message") or ""
        found.append(ConnectionEvent(time, type_.removeprefix(CONNECTION_EVENT), subject,
                                     " · ".join(p for p in (network, error) if p)))
    return found


def latest_positions(db: Session, account_sid: str, sim_sid: str | None = None) -> dict[str, int]:
    """What the live stream compares to know that something new happened, each read from an
    index or one row: sessions (the ingest generation for an account, the SIM's newest session
    and its last update for a SIM), commands (a SIM's newest and its last change) and
    Connection Events (the account's newest)."""
    newest_event = db.execute(select(OutboxEvent.txid, OutboxEvent.pk)
                              .where(OutboxEvent.account_sid == account_sid)
                              .order_by(OutboxEvent.txid.desc(), OutboxEvent.pk.desc())
                              .limit(1)).first()
    found = {"events": hash(tuple(newest_event or ()))}
    if sim_sid is None:
        found["sessions"] = int(db.scalar(select(IngestGeneration.generation)) or 0)
        return found
    newest_session = db.execute(select(DataSession.pk, DataSession.last_updated)
                                .where(DataSession.sim_sid == sim_sid)
                                .order_by(DataSession.pk.desc()).limit(1)).first()
    commands = [db.execute(select(model.pk, model.date_updated)
                           .where(model.account_sid == account_sid, model.sim_sid == sim_sid)
                           .order_by(model.pk.desc()).limit(1)).first()
                for model in (Command, SmsCommand)]
    found["sessions"] = hash(tuple(newest_session or ()))
    found["commands"] = hash(tuple(tuple(c or ()) for c in commands))
    return found


# --- event streams ---------------------------------------------------------------------------

def sinks(db: Session, account_sid: str) -> list[EventSink]:
    return list(db.scalars(select(EventSink).where(EventSink.account_sid == account_sid)
                           .order_by(EventSink.pk)))


def usage_by_roaming(db: Session, account_sid: str, since: datetime) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for roaming, amount in db.execute(
            select(AccountUsageHour.roaming,
                   func.sum(AccountUsageHour.upload + AccountUsageHour.download))
            .where(AccountUsageHour.account_sid == account_sid, AccountUsageHour.hour >= since)
            .group_by(AccountUsageHour.roaming)):
        totals[roaming] += int(amount or 0)
    return {name: totals.get(name, 0) for name in ROAMING}


def super_sim_usage(db: Session, account_sid: str, since: datetime) -> int:
    """An account's Super SIM data since a time, from its hourly rollups."""
    return int(db.scalar(select(func.sum(SuperUsageHour.data_total))
                         .where(SuperUsageHour.account_sid == account_sid,
                                SuperUsageHour.hour >= since)) or 0)
