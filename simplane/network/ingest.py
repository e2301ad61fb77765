"""The one ingest path: normalised network events in; data sessions, the network's state of each
SIM, the hourly usage rollups and (for Super SIMs) Connection Events out, in one transaction. It
is the only writer of sessions and SIM states; the Wireless rollups' command counts are added by
the Commands service (`wireless.service.count_command`) as commands pass.

Counters arrive cumulative per session; ingest keeps the highest seen and adds only the growth, so
a retransmitted, repeated or out-of-order event never counts twice.

Ingest also enforces the rate plan (`simplane.network.policy`): a data session the plan does not
allow is `refused` (and never listed), and a session that reaches the period's data limit is
ended by the network at the limit, the bytes past it not counted. For a Super SIM the Fleet
decides (`FleetPlan`): its Network Access Profile, whether data is enabled, its data limit.

A batch costs a fixed number of statements whatever its size: bulk reads of what the process
does not still hold from earlier batches (`simplane.network.cache`): Wireless SIMs with their
plans, then Super SIMs with their Fleets for the IMSIs left, then the sessions and the states the
batch touches; then bulk inserts and updates. The cyclic garbage collector waits while a batch
runs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from simplane.core.bulk import BulkSql, gc_paused
from simplane.core.sids import new_sid
from simplane.events import outbox
from simplane.network import cache, connection_events, disconnects
from simplane.network.connection_events import REFUSALS
from simplane.network.events import NetworkEvent, operator
from simplane.network.models import DataSession, SimState
from simplane.network.policy import (
    DATA_LIMIT_REACHED,
    SIM_NOT_ACTIVE,
    FleetPlan,
    Plan,
    decide,
    period_key,
    plans_of,
    roaming_class,
    used_against,
)
from simplane.network.rollups import add_usage, hour_of
from simplane.supersim import errors as E
from simplane.supersim import usage as fleet_usage
from simplane.supersim.access import attach_decision, set_ip_addresses
from simplane.supersim.models import Sim as SuperSim
from simplane.wireless import notifications
from simplane.wireless.models import Sim

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

SESSIONS = cast(Table, DataSession.__table__)
STATES = cast(Table, SimState.__table__)
# Columns of a session that ingest reads and may change after the start.
COUNTERS = ("bytes_up", "bytes_down", "packets_up", "packets_down", "last_updated",
            "window_start", "window_up", "window_down")
MUTABLE = ("status", *COUNTERS, "cell_id", "lac", "lat", "lon", "imei", "radio_link",
           "ip_address", "end", "end_reason")
RADIO = ("cell_id", "lac", "lat", "lon", "imei", "radio_link", "ip_address")
RADIO_OF = attrgetter("cell_id", "lac", "lat", "lon", "imei", "rat", "ip_address")  # of an event
STATE_COLUMNS = ("account_sid", "attached", "mcc", "mnc", "roaming", "country", "changed_at",
                 "period", "used_home", "used_national", "used_international")
STATE_USAGE = ("period", "used_home", "used_national", "used_international")
USED = {"home": "used_home", "national": "used_national", "international": "used_international"}
# Super SIM data-session.updated events come about every 6 minutes however often the gateway
# sends interim updates: an interim update closes the window under way once it is this long.
UPDATE_EVERY = timedelta(minutes=6) - timedelta(seconds=30)
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
    connection_events: int = 0
    usage_notifications: int = 0  # KORE RatePlan usage notifications owed
    unknown: list[str] = field(default_factory=list)


def ingest(runtime: Runtime, events: Sequence[NetworkEvent]) -> IngestResult:
    """Ingest a batch: all of it is written, or (on any error) none of it."""
    with runtime.db.write() as db:
        result = ingest_into(db, events, runtime.clock.now(),
                             hold_disconnects=not disconnects.sends(runtime))
        if result.usage_notifications:
            runtime.worker.wake_after_commit(db)
        return result


SESSION_COLUMNS = [SESSIONS.c[name] for name in (
    "pk", "sim_sid", "session_id", "sid", "start", "apn", "roaming", "operator_country",
    "operator_mcc", "operator_mnc", "gateway", "user_name", "disconnect_to", *MUTABLE)]


def gateway_restarted(runtime: Runtime, gateway: str, when: datetime) -> IngestResult:
    """A packet gateway restarted or stopped (RADIUS Accounting-On/Off): the data sessions it
    carried are over. Each ends as its gateway would have ended it, with the counters it had
    (nothing more is counted; a Super SIM's ends with data-session.ended), reason NAS_REBOOT."""
    with runtime.db.write() as db:
        return end_sessions(db, SESSIONS.c.gateway == gateway, "NAS_REBOOT", when)


def end_sessions(db: Session, which: Any, reason: str, when: datetime) -> IngestResult:
    """End the open sessions `which` (a condition on the sessions' table) as their gateway's Stop
    would, with the counters they had (nothing more is counted), for `reason`."""
    sessions = db.execute(
        select(SESSIONS.c.sim_sid, SESSIONS.c.session_id, SESSIONS.c.bytes_up,
               SESSIONS.c.bytes_down, SESSIONS.c.packets_up, SESSIONS.c.packets_down,
               SESSIONS.c.gateway)
        .where(which, SESSIONS.c.status == "open")).all()
    sim_sids = {row.sim_sid for row in sessions}
    imsis = dict(db.execute(select(Sim.sid, Sim.imsi).where(Sim.sid.in_(sim_sids))).all())
    imsis.update(db.execute(select(SuperSim.sid, SuperSim.imsi)
                            .where(SuperSim.sid.in_(sim_sids - imsis.keys()))).all())
    return ingest_into(db, [
        NetworkEvent("session.ended", imsis[row.sim_sid], when, session_id=row.session_id,
                     bytes_up=row.bytes_up, bytes_down=row.bytes_down,
                     packets_up=row.packets_up, packets_down=row.packets_down,
                     error=reason, gateway=row.gateway)
        for row in sessions if imsis.get(row.sim_sid)])


def ingest_into(db: Session, events: Sequence[NetworkEvent],
                now: datetime | None = None, hold_disconnects: bool = False) -> IngestResult:
    """Ingest a batch in the caller's transaction; what it owes (usage notifications) falls due
    `now` (else when the event that owes it happened); the Disconnect-Requests it owes (sessions
    ended at their limit) are held where the server sends none (`disconnects.queue`)."""
    with gc_paused():
        batch = _Batch(db, events, now)
        batch.hold_disconnects = hold_disconnects
        for event in events:
            batch.take(event)
        batch.write()
        return batch.result


class _Batch:
    def __init__(self, db: Session, events: Sequence[NetworkEvent],
                 now: datetime | None = None) -> None:
        self.db = db
        self.now = now
        self.sql = sql = BulkSql(db)
        self.result = IngestResult()
        self.cache = cache.cache_for(db)
        self.generation = cache.next_generation(db)
        self.sims = plans_of(db, {e.imsi for e in events}, self.cache)
        keys = {(self.sims[e.imsi][0], e.session_id) for e in events
                if e.session_id and e.imsi in self.sims}
        sim_sids = {sid for sid, _a, _p in self.sims.values()}
        self.sessions, self.states = self.cache.checkout(self.generation, keys, sim_sids)
        names = [c.name for c in SESSION_COLUMNS]
        self.sessions.update(
            ((row[1], row[2]), dict(zip(names, row, strict=True)))
            for row in sql.select_in(SESSION_COLUMNS, SESSIONS.name,
                                     [SESSIONS.c.sim_sid, SESSIONS.c.session_id],
                                     keys - self.sessions.keys()))
        names = [c.name for c in STATES.c]
        self.states.update(
            (row[0], dict(zip(names, row, strict=True)))
            for row in sql.select_in(list(STATES.c), STATES.name, [STATES.c.sim_sid],
                                     {(sid,) for sid in sim_sids - self.states.keys()}))
        self.new_sessions: list[dict[str, Any]] = []
        self.changed_sessions: dict[int, dict[str, Any]] = {}
        self.new_states: set[str] = set()
        self.changed_states: set[str] = set()  # their usage this period changed
        self.moved_states: set[str] = set()  # their attachment, network or account changed
        self.reshaped: set[int] = set()  # sessions with more than their counters changed
        self.usage: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        # Super SIMs: their usage rollups, connection events and IP addresses.
        self.fleet_usage: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        self.connection_events: list[dict[str, Any]] = []
        self.ip_addresses: dict[str, str | None] = {}
        self.periods: dict[tuple, str] = {}
        self.blocked: list[dict[str, Any]] = []  # sessions ended at their limit
        self.hold_disconnects = False
        self.crossings: list[notifications.Crossing] = []  # Wireless SIMs that reached a limit

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
        fleet = isinstance(plan, FleetPlan)
        kind, rejection = event.kind, None
        if fleet and kind == "attachment.accepted" and event.mcc and event.mnc:
            rejection = attach_decision(cast(FleetPlan, plan).facts, event.mcc, event.mnc)
            if rejection:
                kind = "attachment.rejected"
        period = self._period(plan, event.time)
        state = self._state(sim_sid, account_sid, period, event)
        in_period = period == state["period"]  # not an event of a period already over
        if event.time >= state["changed_at"]:
            self._presence(state, event, kind)
        if event.session_id is None:
            if fleet:
                error = rejection or (
                    (E.ATTACHMENT_FAILED, event.error or "The attachment failed")
                    if kind != "attachment.accepted" else None)
                self._publish(kind, plan, event, error=error)
            return
        key = (sim_sid, event.session_id)
        session = self.sessions.get(key)
        opened = session is None
        if session is None:
            session = self._open(sim_sid, account_sid, plan, state, event, in_period)
            self.sessions[key] = session
            if session["status"] == "refused":
                if fleet and session["end_reason"] in REFUSALS:
                    self._publish("data-session.failed", plan, event, session,
                                  error=REFUSALS[session["end_reason"]],
                                  blocked=session["end_reason"] == "DATA_LIMIT_REACHED")
                return
            if fleet:
                self._publish("data-session.started", plan, event, session)
                self.ip_addresses[sim_sid] = session["ip_address"]
        elif session["status"] == "refused" or session["end_reason"] == "DATA_LIMIT_REACHED":
            return  # the network stopped it: nothing more counts
        elif session["pk"] is not None:
            self.changed_sessions[session["pk"]] = session
        was_open = session["status"] == "open"
        if was_open and not opened and not plan.may_use_data():
            # The SIM was made inactive mid-session: the network ends it, counting nothing more.
            session.update(status="ended", end=event.time, end_reason=SIM_NOT_ACTIVE)
            self.reshaped.add(session["pk"])
            result.sessions_ended += 1
        elif not opened:
            # (Counters on a Start are counted by the next record: they are cumulative, and so
            # every byte lies in a data-session.updated or .ended window.)
            up, down = self._count(sim_sid, account_sid, plan, state, session, event, in_period)
            if fleet:
                session["window_up"] += up
                session["window_down"] += down
        ending = event.kind in ("session.ended", "session.failed") and session["status"] == "open"
        if ending:
            self.reshaped.add(session["pk"])
            session["status"] = "ended" if event.kind == "session.ended" else "failed"
            session["end"] = event.time
            session["end_reason"] = event.error[:32] if event.error else None
            result.sessions_ended += 1
        if not fleet or not was_open:
            return
        blocked = session["end_reason"] == "DATA_LIMIT_REACHED"
        if session["status"] != "open":
            self.ip_addresses[sim_sid] = None
        if event.kind == "session.failed" and ending:
            self._publish("data-session.failed", plan, event, session,
                          error=(E.DATA_SESSION_FAILED, event.error or "The data session failed"))
            return
        window_start = session["window_start"]
        if session["status"] == "open" and not (event.kind == "session.updated"
                                                and event.time - window_start >= UPDATE_EVERY):
            return  # the window goes on
        kind = "data-session.updated" if session["status"] == "open" else "data-session.ended"
        end = max(event.time, window_start)
        self._publish(kind, plan, event, session, window=(window_start, end),
                      growth=(session["window_up"], session["window_down"]), blocked=blocked)
        session.update(window_start=end, window_up=0, window_down=0)

    def _publish(self, kind: str, plan: Plan | FleetPlan, event: NetworkEvent,
                 session: dict[str, Any] | None = None, **facts: Any) -> None:
        """A Connection Event (of a Super SIM: its plan is a FleetPlan)."""
        mcc, mnc = ((session["operator_mcc"], session["operator_mnc"]) if session
                    else (event.mcc, event.mnc))
        sim = cast(FleetPlan, plan).facts
        data = connection_events.event(
            kind, sim, event.time, imsi=event.imsi,
            imei=event.imei or (session["imei"] if session else None),
            rat=event.rat or (session["radio_link"] if session else None), mcc=mcc, mnc=mnc,
            location=connection_events.location_of(event, session), session=session, **facts)
        if data is not None:
            self.connection_events.append({
                "account_sid": sim.account_sid, "type": data["event_type"], "data": data,
                "subject": sim.sid, "time": event.time, "id": data["event_sid"]})

    def _period(self, plan: Plan | FleetPlan, when: datetime) -> str:
        """The billing period `when` falls in, by its first second: a month from activation
        (for Super SIM, the ready period too), else the calendar month."""
        key = (plan.anchor, when)  # SIMs activated together share their periods
        period = self.periods.get(key)
        if period is None:
            period = self.periods[key] = period_key(plan, when)
        return period

    def _state(self, sim_sid: str, account_sid: str, period: str,
               event: NetworkEvent) -> dict[str, Any]:
        state = self.states.get(sim_sid)
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
            self.moved_states.add(sim_sid)
        return state

    def _presence(self, state: dict[str, Any], event: NetworkEvent, kind: str) -> None:
        attached = ATTACHING[kind]
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
        self.moved_states.add(state["sim_sid"])

    def _open(self, sim_sid: str, account_sid: str, plan: Plan | FleetPlan,
              state: dict[str, Any], event: NetworkEvent, in_period: bool) -> dict[str, Any]:
        op = operator(event.mcc, event.mnc) if event.mcc and event.mnc else None
        decision = decide(plan, event.imsi, event.mcc, event.mnc, self._usage(state, in_period))
        refusal, roaming = decision.refusal, decision.roaming
        session = {
            "pk": None, "sid": new_sid("PI" if isinstance(plan, FleetPlan) else "WN"),
            "account_sid": account_sid, "sim_sid": sim_sid, "session_id": event.session_id,
            "status": "refused" if refusal else "open", "radio_link": event.rat,
            "operator_mcc": event.mcc, "operator_mnc": event.mnc,
            "operator_country": op.country if op else None,
            "operator_name": op.name if op else None, "roaming": roaming,
            "cell_id": event.cell_id, "lac": event.lac, "lat": event.lat, "lon": event.lon,
            "imei": event.imei, "apn": event.apn, "ip_address": event.ip_address,
            "bytes_up": 0, "bytes_down": 0, "packets_up": 0, "packets_down": 0,
            "start": event.time, "end": event.time if refusal else None,
            "last_updated": event.time, "end_reason": refusal,
            "window_start": event.time, "window_up": 0, "window_down": 0,
            "gateway": event.gateway, "user_name": event.user_name,
            "disconnect_to": event.disconnect_to,
        }
        self.new_sessions.append(session)
        if refusal:
            self.result.sessions_refused += 1
        else:
            self.result.sessions_started += 1
        return session

    @staticmethod
    def _usage(state: dict[str, Any], in_period: bool) -> dict[str, int] | None:
        """Bytes counted this period by roaming class; none for an event of a period already
        over (a late event does not block the SIM now)."""
        return {roaming: state[column] for roaming, column in USED.items()} if in_period else None

    def _count(self, sim_sid: str, account_sid: str, plan: Plan | FleetPlan,
               state: dict[str, Any], session: dict[str, Any], event: NetworkEvent,
               in_period: bool) -> tuple[int, int]:
        """Count the session's growth; returns the bytes (up, down) counted."""
        if event.time >= session["last_updated"]:
            for name, value in zip(RADIO, RADIO_OF(event), strict=True):
                if value is not None and value != session[name]:
                    session[name] = value
                    self.reshaped.add(session["pk"])
            session["last_updated"] = event.time
        up = event.bytes_up - session["bytes_up"]
        down = event.bytes_down - session["bytes_down"]
        up, down = max(up, 0), max(down, 0)
        session["packets_up"] = max(session["packets_up"], event.packets_up)
        session["packets_down"] = max(session["packets_down"], event.packets_down)
        if not (up or down):
            return 0, 0
        roaming = session["roaming"]
        room = plan.room(roaming, used_against(plan, self._usage(state, in_period), roaming))
        if room is not None and up + down >= room:
            # The network blocks the SIM at its limit: the session ends there.
            up = min(up, room)
            down = room - up
            if session["status"] == "open":
                session.update(status="ended", end=event.time, end_reason="DATA_LIMIT_REACHED")
                self.reshaped.add(session["pk"])
                self.result.sessions_blocked += 1
                if session["disconnect_to"]:  # its gateway is told to end it
                    self.blocked.append({**session, "imsi": event.imsi, "account_sid": account_sid})
        session["bytes_up"] += up
        session["bytes_down"] += down
        if in_period:
            before = state[USED[roaming]]
            state[USED[roaming]] += up + down
            self.changed_states.add(state["sim_sid"])
            if isinstance(plan, Plan):
                limit = plan.limit(roaming)
                if limit > 0 and before < limit <= before + up + down:
                    self.crossings.append(notifications.Crossing(
                        sim_sid, account_sid, roaming, before + up + down, state["period"],
                        event.time))
        hour = hour_of(event.time)
        if isinstance(plan, FleetPlan):
            bucket = self.fleet_usage[(sim_sid, hour, session["operator_mcc"],
                                       session["operator_mnc"])]
        else:
            bucket = self.usage[(sim_sid, account_sid, hour, roaming,
                                 session["operator_country"] or "")]
        bucket[0] += up
        bucket[1] += down
        self.result.bytes_counted += up + down
        return up, down

    # -- the writes
    def write(self) -> None:
        db, sql = self.db, self.sql
        if self.new_sessions:
            db.execute(insert(SESSIONS), [{k: v for k, v in s.items() if k != "pk"}
                                          for s in self.new_sessions])
        changed = sorted(self.changed_sessions.items())  # in key order: each page once
        reshaped = [s for pk, s in changed if pk in self.reshaped]
        counted = [s for pk, s in changed if pk not in self.reshaped]
        if reshaped:
            sql.update(SESSIONS, "pk", MUTABLE, reshaped)
        if counted:  # interim updates: only the counters moved
            sql.update(SESSIONS, "pk", COUNTERS, counted)
        if self.new_states:
            db.execute(insert(STATES), [self.states[sid] for sid in self.new_states])
        moved = self.moved_states - self.new_states
        used = self.changed_states - self.new_states - moved
        if moved:
            sql.update(STATES, "sim_sid", STATE_COLUMNS, (self.states[sid] for sid in sorted(moved)))
        if used:
            sql.update(STATES, "sim_sid", STATE_USAGE, (self.states[sid] for sid in sorted(used)))
        add_usage(db, self.usage, sql=sql)
        if self.fleet_usage:
            self._add_fleet_usage()
        if self.ip_addresses:
            set_ip_addresses(db, self.ip_addresses)
        if self.blocked:
            disconnects.queue(db, self.blocked, DATA_LIMIT_REACHED, self.blocked[0]["end"],
                              held=self.hold_disconnects)
        if self.crossings:
            self.result.usage_notifications = notifications.owe(db, self.crossings, self.now)
        if self.connection_events:
            outbox.publish_many(db, self.connection_events)
            self.result.connection_events = len(self.connection_events)
        cache.after_commit(
            db, self.cache, self.generation,
            [(key, s) for key, s in self.sessions.items()
             if s["status"] == "open" and s["pk"] is not None],
            self.states.items())

    def _add_fleet_usage(self) -> None:
        facts = {sid: plan.facts for sid, _a, plan in self.sims.values()
                 if isinstance(plan, FleetPlan)}
        rows = []
        for (sim_sid, hour, mcc, mnc), (up, down) in sorted(self.fleet_usage.items()):
            # A Super SIM's session is on a network of its Fleet's profile: in the catalogue.
            network = connection_events.network(mcc, mnc)
            assert network is not None  # a Super SIM's session without its network is refused
            sim = facts[sim_sid]
            rows.append((sim.account_sid, sim_sid, sim.fleet_sid, network["sid"],
                         network["iso_country"], hour, up, down, up + down))
        fleet_usage.upsert(self.db, rows)
