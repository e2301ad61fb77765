"""The one ingest path: normalised network events in; data sessions, the network's state of each
SIM and the hourly usage rollups out, in one transaction. It is the only writer of all three.

Counters arrive cumulative per session; ingest keeps the highest seen and adds only the growth, so
a retransmitted, repeated or out-of-order event never counts twice.

Ingest also enforces the rate plan (`simplane.network.policy`): a data session the plan does not
allow is `refused` (and never listed), and a session that reaches the period's data limit is
ended by the network at the limit, the bytes past it not counted.

A batch costs a fixed number of statements whatever its size: three reads (SIMs with their plans,
the sessions and the states the batch touches), then bulk inserts and updates.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from simplane.core.sids import new_sid
from simplane.network.events import NetworkEvent, home_network, operator
from simplane.network.models import AccountUsageHour, DataSession, SimState, SimUsageHour
from simplane.network.policy import Plan
from simplane.wireless.models import RatePlan, Sim

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

SESSIONS = DataSession.__table__
STATES = SimState.__table__
# Columns of a session that ingest reads and may change after the start.
MUTABLE = ("status", "bytes_up", "bytes_down", "packets_up", "packets_down", "last_updated",
           "cell_id", "lac", "lat", "lon", "imei", "radio_link", "ip_address", "end", "end_reason")
RADIO = ("cell_id", "lac", "lat", "lon", "imei", "radio_link", "ip_address")
RADIO_EVENT = {"radio_link": "rat"}
STATE_COLUMNS = ("account_sid", "attached", "mcc", "mnc", "roaming", "country", "changed_at",
                 "period", "used_home", "used_national", "used_international")
ROLLUP = ("upload", "download", "commands_from_sim", "commands_to_sim")
USED = {"home": "used_home", "national": "used_national", "international": "used_international"}
ATTACHING = {"attachment.accepted": True, "session.started": True, "session.updated": True,
             "attachment.rejected": False, "attachment.failed": False, "session.ended": False,
             "session.failed": False}


@dataclass
class IngestResult:
    accepted: int = 0
    unknown_imsi: int = 0
    sessions_started: int = 0
    sessions_refused: int = 0
    sessions_ended: int = 0
    sessions_blocked: int = 0
    bytes_counted: int = 0
    unknown: list[str] = field(default_factory=list)


def ingest(runtime: Runtime, events: Sequence[NetworkEvent]) -> IngestResult:
    """Ingest a batch: all of it is written, or (on any error) none of it."""
    with runtime.db.write() as db:
        return ingest_into(db, events)


def roaming_class(imsi: str, mcc: str | None, mnc: str | None) -> str:
    home_mcc, home_mnc = home_network(imsi)
    if mcc is None or (mcc == home_mcc and mnc == home_mnc):
        return "home"
    return "national" if mcc == home_mcc else "international"


# SIMs with their status and the parts of their rate plan the network enforces (`Plan.of`).
SIM_COLUMNS = [Sim.__table__.c[name] for name in ("sid", "account_sid", "imsi", "status")] + [
    RatePlan.__table__.c[name] for name in (
        "data_enabled", "data_limit", "data_limit_strategy", "national_roaming_enabled",
        "national_roaming_data_limit", "international_roaming",
        "international_roaming_data_limit")]
SIMS_FROM = (f"{Sim.__tablename__} LEFT OUTER JOIN {RatePlan.__tablename__} "
             f"ON {RatePlan.__tablename__}.pk = {Sim.__tablename__}.rate_plan_pk")
SESSION_COLUMNS = [SESSIONS.c[name] for name in (
    "pk", "sim_sid", "session_id", "roaming", "operator_country", *MUTABLE)]


def ingest_into(db: Session, events: Sequence[NetworkEvent]) -> IngestResult:
    batch = _Batch(db, events)
    for event in events:
        batch.take(event)
    batch.write()
    return batch.result


class _Batch:
    def __init__(self, db: Session, events: Sequence[NetworkEvent]) -> None:
        self.db = db
        self.sql = sql = _DriverSql(db)
        self.result = IngestResult()
        self.sims: dict[str, tuple[str, str, Plan]] = {}  # IMSI → SID, account, plan
        plans: dict[tuple, Plan] = {}
        for row in sql.select_in(SIM_COLUMNS, SIMS_FROM, [Sim.imsi], {(e.imsi,) for e in events},
                                 processed=False):
            roaming = row[9] if isinstance(row[9], str | None) else tuple(row[9])  # JSON
            terms = (*row[3:9], roaming, row[10])
            plan = plans.get(terms)
            if plan is None:
                roaming = json.loads(roaming) if isinstance(roaming, str) else roaming
                plan = plans[terms] = Plan.of(*row[3:9], roaming, row[10])
            self.sims[row[2]] = (row[0], row[1], plan)
        keys = {(self.sims[e.imsi][0], e.session_id) for e in events
                if e.session_id and e.imsi in self.sims}
        names = [c.name for c in SESSION_COLUMNS]
        self.sessions: dict[tuple[str, str], dict[str, Any]] = {
            (row[1], row[2]): dict(zip(names, row, strict=True))
            for row in sql.select_in(SESSION_COLUMNS, SESSIONS.name,
                                     [SESSIONS.c.sim_sid, SESSIONS.c.session_id], keys)}
        names = [c.name for c in STATES.c]
        self.states: dict[str, dict[str, Any]] = {
            row[0]: dict(zip(names, row, strict=True))
            for row in sql.select_in(list(STATES.c), STATES.name, [STATES.c.sim_sid],
                                     {(sid,) for sid, _a, _p in self.sims.values()})}
        self.new_sessions: list[dict[str, Any]] = []
        self.changed_sessions: dict[int, dict[str, Any]] = {}
        self.new_states: set[str] = set()
        self.changed_states: set[str] = set()
        self.usage: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])

    # -- one event
    def take(self, event: NetworkEvent) -> None:
        sim = self.sims.get(event.imsi)
        result = self.result
        if sim is None:
            result.unknown_imsi += 1
            result.unknown.append(event.imsi)
            return
        result.accepted += 1
        sim_sid, account_sid, plan = sim
        state = self._state(sim_sid, account_sid, event)
        if event.time >= state["changed_at"]:
            self._presence(state, event)
        if event.session_id is None:
            return
        key = (sim_sid, event.session_id)
        session = self.sessions.get(key)
        if session is None:
            session = self._open(sim_sid, account_sid, plan, state, event)
            self.sessions[key] = session
            if session["status"] == "refused":
                return
        elif session["status"] == "refused" or session["end_reason"] == "DATA_LIMIT_REACHED":
            return  # the network stopped it: nothing more counts
        elif session["pk"] is not None:
            self.changed_sessions[session["pk"]] = session
        self._count(sim_sid, account_sid, plan, state, session, event)
        if event.kind in ("session.ended", "session.failed") and session["status"] == "open":
            session["status"] = "ended" if event.kind == "session.ended" else "failed"
            session["end"] = event.time
            session["end_reason"] = event.error[:32] if event.error else None
            result.sessions_ended += 1

    def _state(self, sim_sid: str, account_sid: str, event: NetworkEvent) -> dict[str, Any]:
        state = self.states.get(sim_sid)
        period = f"{event.time:%Y-%m}"
        if state is None:
            state = self.states[sim_sid] = {
                "sim_sid": sim_sid, "account_sid": account_sid, "attached": False,
                "mcc": None, "mnc": None, "roaming": "home", "country": "",
                "changed_at": event.time, "period": period,
                "used_home": 0, "used_national": 0, "used_international": 0}
            self.new_states.add(sim_sid)
        elif period > state["period"]:
            state.update(period=period, used_home=0, used_national=0, used_international=0)
            self.changed_states.add(sim_sid)
        if state["account_sid"] != account_sid:  # the SIM moved to another account
            state["account_sid"] = account_sid
            self.changed_states.add(sim_sid)
        return state

    def _presence(self, state: dict[str, Any], event: NetworkEvent) -> None:
        attached = ATTACHING[event.kind]
        moved = event.mcc is not None and (event.mcc, event.mnc) != (state["mcc"], state["mnc"])
        if attached == state["attached"] and not moved:
            return
        state["attached"] = attached
        state["changed_at"] = event.time
        if moved:
            op = operator(event.mcc, event.mnc) if event.mnc else None
            state.update(mcc=event.mcc, mnc=event.mnc,
                         roaming=roaming_class(event.imsi, event.mcc, event.mnc),
                         country=(op.country if op else None) or "")
        if state["sim_sid"] not in self.new_states:
            self.changed_states.add(state["sim_sid"])

    def _open(self, sim_sid: str, account_sid: str, plan: Plan, state: dict[str, Any],
              event: NetworkEvent) -> dict[str, Any]:
        op = operator(event.mcc, event.mnc) if event.mcc and event.mnc else None
        roaming = roaming_class(event.imsi, event.mcc, event.mnc)
        refusal = plan.refusal(roaming, self._used(state, roaming, event))
        session = {
            "pk": None, "sid": new_sid("WN"), "account_sid": account_sid,
            "sim_sid": sim_sid, "session_id": event.session_id,
            "status": "refused" if refusal else "open", "radio_link": event.rat,
            "operator_mcc": event.mcc, "operator_mnc": event.mnc,
            "operator_country": op.country if op else None,
            "operator_name": op.name if op else None, "roaming": roaming,
            "cell_id": event.cell_id, "lac": event.lac, "lat": event.lat, "lon": event.lon,
            "imei": event.imei, "apn": event.apn, "ip_address": event.ip_address,
            "bytes_up": 0, "bytes_down": 0, "packets_up": 0, "packets_down": 0,
            "start": event.time, "end": event.time if refusal else None,
            "last_updated": event.time, "end_reason": refusal,
        }
        self.new_sessions.append(session)
        if refusal:
            self.result.sessions_refused += 1
        else:
            self.result.sessions_started += 1
        return session

    @staticmethod
    def _used(state: dict[str, Any], roaming: str, event: NetworkEvent) -> int:
        return state[USED[roaming]] if f"{event.time:%Y-%m}" == state["period"] else 0

    def _count(self, sim_sid: str, account_sid: str, plan: Plan, state: dict[str, Any],
               session: dict[str, Any], event: NetworkEvent) -> None:
        if event.time >= session["last_updated"]:
            for name in RADIO:
                value = getattr(event, RADIO_EVENT.get(name, name))
                if value is not None:
                    session[name] = value
            session["last_updated"] = event.time
        up = event.bytes_up - session["bytes_up"]
        down = event.bytes_down - session["bytes_down"]
        up, down = max(up, 0), max(down, 0)
        session["packets_up"] = max(session["packets_up"], event.packets_up)
        session["packets_down"] = max(session["packets_down"], event.packets_down)
        if not (up or down):
            return
        roaming = session["roaming"]
        in_period = f"{event.time:%Y-%m}" == state["period"]
        room = plan.room(roaming, state[USED[roaming]] if in_period else 0)
        if room is not None and up + down >= room:
            # The network blocks the SIM at its limit: the session ends there.
            up = min(up, room)
            down = room - up
            if session["status"] == "open":
                session.update(status="ended", end=event.time, end_reason="DATA_LIMIT_REACHED")
                self.result.sessions_blocked += 1
        session["bytes_up"] += up
        session["bytes_down"] += down
        if in_period:
            state[USED[roaming]] += up + down
            if state["sim_sid"] not in self.new_states:
                self.changed_states.add(state["sim_sid"])
        bucket = self.usage[(sim_sid, account_sid, hour_of(event.time), roaming,
                             session["operator_country"] or "")]
        bucket[0] += up
        bucket[1] += down
        self.result.bytes_counted += up + down

    # -- the writes
    def write(self) -> None:
        db, sql = self.db, self.sql
        if self.new_sessions:
            db.execute(insert(SESSIONS), [{k: v for k, v in s.items() if k != "pk"}
                                          for s in self.new_sessions])
        if self.changed_sessions:
            sql.update(SESSIONS, "pk", MUTABLE, self.changed_sessions.items())
        if self.new_states:
            db.execute(insert(STATES), [self.states[sid] for sid in self.new_states])
        changed = self.changed_states - self.new_states
        if changed:
            sql.update(STATES, "sim_sid", STATE_COLUMNS,
                       ((sid, self.states[sid]) for sid in changed))
        add_usage(db, self.usage, sql=sql)


class _DriverSql:
    """Bulk statements sent to the driver as they are, rows as tuples: for batches of thousands
    of rows, SQLAlchemy's per-row parameter processing would cost more than the database does.
    Values go through the column types' own bind processors, so they are stored exactly as
    SQLAlchemy stores them."""

    def __init__(self, db: Session) -> None:
        self.connection = db.connection()
        self.dialect = self.connection.dialect
        self.mark = "?" if self.dialect.paramstyle == "qmark" else "%s"

    def _run(self, statement: str, table, names: Sequence[str], rows: Iterable[tuple]) -> None:  # type: ignore[no-untyped-def]
        processors = [(i, p) for i, name in enumerate(names)
                      if (p := table.c[name].type._cached_bind_processor(self.dialect))]
        values = [list(row) for row in rows]
        for row in values:
            for i, process in processors:
                if row[i] is not None:
                    row[i] = process(row[i])
        if values:
            self.connection.exec_driver_sql(statement, [tuple(row) for row in values])

    def select_in(self, columns: Sequence, source: str, keys: Sequence,  # type: ignore[no-untyped-def]
                  values: Iterable[tuple], processed: bool = True) -> list[tuple]:
        """SELECT columns FROM source WHERE (keys) IN values, the values sent as one parameter
        per key column (a JSON array on SQLite, arrays on PostgreSQL), rows read back through
        the columns' result processors (unless not `processed`: the driver's values)."""
        values = list(values)
        if not values:
            return []
        wanted = ", ".join(f'{c.table.name}."{c.name}"' for c in columns)
        target = ", ".join(f'{c.table.name}."{c.name}"' for c in keys)
        if self.dialect.name == "sqlite":
            picks = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(keys)))
            among = f"SELECT {picks} FROM json_each(?)"
            params: tuple = (json.dumps(values),)
        else:
            among = "SELECT * FROM unnest(" + ", ".join(["%s::text[]"] * len(keys)) + ")"
            params = tuple(list(column) for column in zip(*values, strict=True))
        result = self.connection.exec_driver_sql(
            f"SELECT {wanted} FROM {source} WHERE ({target}) IN ({among})", params)
        types = [d[1] for d in result.cursor.description]
        rows = result.fetchall()
        processors = [(i, p) for i, c in enumerate(columns) if processed
                      and (p := c.type._cached_result_processor(self.dialect, types[i]))]
        if not processors:
            return [tuple(row) for row in rows]
        out = []
        for row in rows:
            row = list(row)
            for i, process in processors:
                row[i] = process(row[i])
            out.append(tuple(row))
        return out

    def update(self, table, key: str, names: Sequence[str],  # type: ignore[no-untyped-def]
               items: Iterable[tuple[Any, dict[str, Any]]]) -> None:
        """UPDATE table SET names… WHERE key = …, one row per (key value, values) item."""
        sets = ", ".join(f'"{name}" = {self.mark}' for name in names)
        self._run(f'UPDATE {table.name} SET {sets} WHERE "{key}" = {self.mark}', table,
                  [*names, key], ((*(row[n] for n in names), k) for k, row in items))

    def upsert_add(self, table, keys: Sequence[str], names: Sequence[str],  # type: ignore[no-untyped-def]
                   counters: Sequence[str], rows: Iterable[tuple]) -> None:
        """INSERT … ON CONFLICT (keys) DO UPDATE adding the counters (SQLite and PostgreSQL)."""
        marks = ", ".join([self.mark] * len(names))
        adds = ", ".join(f"{c} = {table.name}.{c} + excluded.{c}" for c in counters)
        self._run(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks}) "
                  f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {adds}", table, names, rows)


def add_usage(db: Session, usage: dict[tuple, list[int]], sql: _DriverSql | None = None) -> None:
    """Add to the hourly rollups of SIMs and their accounts: `usage` maps (sim_sid, account_sid,
    hour, roaming, country) to the growth of the four `ROLLUP` counters."""
    if not usage:
        return
    sql = sql or _DriverSql(db)
    per_account: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for (_sim, account_sid, hour, roaming, country), growth in usage.items():
        total = per_account[(account_sid, hour, roaming, country)]
        for i, value in enumerate(growth):
            total[i] += value
    sql.upsert_add(SimUsageHour.__table__, ("sim_sid", "hour", "roaming", "country"),
                   ("sim_sid", "account_sid", "hour", "roaming", "country", *ROLLUP), ROLLUP,
                   ((*key, *growth) for key, growth in usage.items()))
    sql.upsert_add(AccountUsageHour.__table__, ("account_sid", "hour", "roaming", "country"),
                   ("account_sid", "hour", "roaming", "country", *ROLLUP), ROLLUP,
                   ((*key, *growth) for key, growth in per_account.items()))


def hour_of(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)
