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

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from simplane.core.sids import new_sid
from simplane.network.events import NetworkEvent, home_network, operator
from simplane.network.models import AccountUsageHour, DataSession, SimState, SimUsageHour
from simplane.network.policy import Plan
from simplane.wireless.models import RatePlan, Sim

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

CHUNK = 4000  # keys per IN (…) list: well inside every database's limit on bound parameters
SESSIONS = DataSession.__table__
STATES = SimState.__table__
# Columns of a session that ingest reads and may change after the start.
MUTABLE = ("status", "bytes_up", "bytes_down", "packets_up", "packets_down", "last_updated",
           "cell_id", "lac", "lat", "lon", "imei", "radio_link", "ip_address", "end", "end_reason")
RADIO = ("cell_id", "lac", "lat", "lon", "imei", "radio_link", "ip_address")
RADIO_EVENT = {"radio_link": "rat"}
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


def sims_statement():  # type: ignore[no-untyped-def]
    """SIMs with the parts of their rate plan the network enforces."""
    return (select(Sim.sid, Sim.account_sid, Sim.imsi, Sim.status, RatePlan.data_enabled,
                   RatePlan.data_limit, RatePlan.data_limit_strategy,
                   RatePlan.national_roaming_enabled, RatePlan.national_roaming_data_limit,
                   RatePlan.international_roaming, RatePlan.international_roaming_data_limit)
            .outerjoin(RatePlan, RatePlan.pk == Sim.rate_plan_pk))


def ingest_into(db: Session, events: Sequence[NetworkEvent]) -> IngestResult:
    batch = _Batch(db, events)
    for event in events:
        batch.take(event)
    batch.write()
    return batch.result


def _chunks(items: Iterable, size: int = CHUNK) -> Iterable[list]:
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i:i + size]


class _Batch:
    def __init__(self, db: Session, events: Sequence[NetworkEvent]) -> None:
        self.db = db
        self.result = IngestResult()
        self.plans: dict[str, Plan] = {}
        for imsis in _chunks({e.imsi for e in events}):
            for row in db.execute(sims_statement().where(Sim.imsi.in_(imsis))):
                self.plans[row.imsi] = Plan.from_row(row)
        keys = {(self.plans[e.imsi].sid, e.session_id) for e in events
                if e.session_id and e.imsi in self.plans}
        self.sessions: dict[tuple[str, str], dict[str, Any]] = {}
        columns = [SESSIONS.c.pk, SESSIONS.c.sim_sid, SESSIONS.c.session_id, SESSIONS.c.roaming,
                   SESSIONS.c.operator_country, *(SESSIONS.c[name] for name in MUTABLE)]
        for chunk in _chunks(keys):
            for row in db.execute(select(*columns).where(
                    tuple_(SESSIONS.c.sim_sid, SESSIONS.c.session_id).in_(chunk))):
                self.sessions[(row.sim_sid, row.session_id)] = row._asdict()
        self.states: dict[str, dict[str, Any]] = {}
        for sids in _chunks({plan.sid for plan in self.plans.values()}):
            for row in db.execute(select(STATES).where(STATES.c.sim_sid.in_(sids))):
                self.states[row.sim_sid] = row._asdict()
        self.new_sessions: list[dict[str, Any]] = []
        self.changed_sessions: dict[int, dict[str, Any]] = {}
        self.new_states: set[str] = set()
        self.changed_states: set[str] = set()
        self.usage: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])

    # -- one event
    def take(self, event: NetworkEvent) -> None:
        plan = self.plans.get(event.imsi)
        result = self.result
        if plan is None:
            result.unknown_imsi += 1
            result.unknown.append(event.imsi)
            return
        result.accepted += 1
        state = self._state(plan, event)
        if event.time >= state["changed_at"]:
            self._presence(state, event)
        if event.session_id is None:
            return
        key = (plan.sid, event.session_id)
        session = self.sessions.get(key)
        if session is None:
            session = self._open(plan, state, event)
            self.sessions[key] = session
            if session["status"] == "refused":
                return
        elif session["status"] == "refused" or session["end_reason"] == "DATA_LIMIT_REACHED":
            return  # the network stopped it: nothing more counts
        elif session["pk"] is not None:
            self.changed_sessions[session["pk"]] = session
        self._count(plan, state, session, event)
        if event.kind in ("session.ended", "session.failed") and session["status"] == "open":
            session["status"] = "ended" if event.kind == "session.ended" else "failed"
            session["end"] = event.time
            session["end_reason"] = event.error[:32] if event.error else None
            result.sessions_ended += 1

    def _state(self, plan: Plan, event: NetworkEvent) -> dict[str, Any]:
        state = self.states.get(plan.sid)
        period = f"{event.time:%Y-%m}"
        if state is None:
            state = self.states[plan.sid] = {
                "sim_sid": plan.sid, "account_sid": plan.account_sid, "attached": False,
                "mcc": None, "mnc": None, "roaming": "home", "country": "",
                "changed_at": event.time, "period": period,
                "used_home": 0, "used_national": 0, "used_international": 0}
            self.new_states.add(plan.sid)
        elif period > state["period"]:
            state.update(period=period, used_home=0, used_national=0, used_international=0)
            self.changed_states.add(plan.sid)
        if state["account_sid"] != plan.account_sid:  # the SIM moved to another account
            state["account_sid"] = plan.account_sid
            self.changed_states.add(plan.sid)
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

    def _open(self, plan: Plan, state: dict[str, Any], event: NetworkEvent) -> dict[str, Any]:
        op = operator(event.mcc, event.mnc) if event.mcc and event.mnc else None
        roaming = roaming_class(event.imsi, event.mcc, event.mnc)
        refusal = plan.refusal(roaming, self._used(state, roaming, event))
        session = {
            "pk": None, "sid": new_sid("WN"), "account_sid": plan.account_sid,
            "sim_sid": plan.sid, "session_id": event.session_id,
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

    def _count(self, plan: Plan, state: dict[str, Any], session: dict[str, Any],
               event: NetworkEvent) -> None:
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
        bucket = self.usage[(plan.sid, plan.account_sid, hour_of(event.time), roaming,
                             session["operator_country"] or "")]
        bucket[0] += up
        bucket[1] += down
        self.result.bytes_counted += up + down

    # -- the writes
    def write(self) -> None:
        db = self.db
        if self.new_sessions:
            db.execute(insert(SESSIONS), [{k: v for k, v in s.items() if k != "pk"}
                                          for s in self.new_sessions])
        if self.changed_sessions:
            db.execute(update(SESSIONS).where(SESSIONS.c.pk == bindparam("_pk")),
                       [{"_pk": pk, **{name: s[name] for name in MUTABLE}}
                        for pk, s in self.changed_sessions.items()])
        if self.new_states:
            db.execute(insert(STATES), [self.states[sid] for sid in self.new_states])
        changed = self.changed_states - self.new_states
        if changed:
            db.execute(update(STATES).where(STATES.c.sim_sid == bindparam("_sid")),
                       [{"_sid": sid, **{k: v for k, v in self.states[sid].items()
                                          if k != "sim_sid"}} for sid in changed])
        add_usage(db, self.usage)


def add_usage(db: Session, usage: dict[tuple, list[int]],
              counters: tuple[str, str] = ("upload", "download")) -> None:
    """Add to the hourly rollups of SIMs and their accounts: `usage` maps (sim_sid, account_sid,
    hour, roaming, country) to the two `counters`' growth."""
    if not usage:
        return
    per_account: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    sim_rows = []
    first, second = counters
    for (sim_sid, account_sid, hour, roaming, country), (a, b) in usage.items():
        sim_rows.append({"sim_sid": sim_sid, "account_sid": account_sid, "hour": hour,
                         "roaming": roaming, "country": country, first: a, second: b})
        total = per_account[(account_sid, hour, roaming, country)]
        total[0] += a
        total[1] += b
    account_rows = [{"account_sid": acc, "hour": h, "roaming": r, "country": c, first: a,
                     second: b} for (acc, h, r, c), (a, b) in per_account.items()]
    _upsert_add(db, SimUsageHour, ["sim_sid", "hour", "roaming", "country"], sim_rows, counters)
    _upsert_add(db, AccountUsageHour, ["account_sid", "hour", "roaming", "country"],
                account_rows, counters)


def _upsert_add(db: Session, model, keys: list[str], rows: list[dict],  # type: ignore[no-untyped-def]
                counters: tuple[str, ...]) -> None:
    """INSERT … ON CONFLICT DO UPDATE adding the counters (SQLite and PostgreSQL alike)."""
    dialect_insert = sqlite_insert if db.get_bind().dialect.name == "sqlite" else pg_insert
    stmt = dialect_insert(model)
    table = model.__table__
    stmt = stmt.on_conflict_do_update(index_elements=keys, set_={
        name: table.c[name] + stmt.excluded[name] for name in counters})
    db.execute(stmt, rows)


def hour_of(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)
