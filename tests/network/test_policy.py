"""The rate plan decides: sessions it does not allow are refused, and data stops at the limit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from simplane.core.clock import add_months
from simplane.network import ingest as ingest_module
from simplane.network.events import NetworkEvent
from simplane.network.ingest import ingest
from simplane.network.models import DataSession, SimState, SimUsageHour
from simplane.wireless.models import Sim

HOME = ("901", "42")
NATIONAL = ("901", "43")  # same country code as the home network, another network
ABROAD = ("262", "01")
MB = 1_000_000


def sim_on(server, account, **plan):
    name = f"plan{len(account.client.wireless.v1.rate_plans.list())}"
    account.client.wireless.v1.rate_plans.create(unique_name=name, **plan)
    [sid] = server.provision(account.sid, 1, status="active", rate_plan=name)
    with server.runtime.db.read() as db:
        return sid, db.scalar(select(Sim.imsi).where(Sim.sid == sid))


def ev(server, imsi, kind, offset, up=0, down=0, session="s1", network=HOME):
    return NetworkEvent(kind=kind, imsi=imsi, time=server.clock.now() + timedelta(seconds=offset),
                        session_id=session, mcc=network[0], mnc=network[1], bytes_up=up,
                        bytes_down=down)


def usage_total(server, sid):
    with server.runtime.db.read() as db:
        return db.scalar(select(func.coalesce(func.sum(SimUsageHour.upload + SimUsageHour.download), 0))
                         .where(SimUsageHour.sim_sid == sid))


def test_data_disabled_and_roaming_not_allowed_are_refused(server, account):
    off_sid, off = sim_on(server, account, data_enabled=False)
    stay_sid, stay = sim_on(server, account, national_roaming_enabled=False)
    result = ingest(server.runtime, [
        ev(server, off, "session.started", 0), ev(server, off, "session.updated", 60, 10, 10),
        ev(server, stay, "session.started", 0, session="n", network=NATIONAL),
        ev(server, stay, "session.updated", 60, 5, 5, session="n", network=NATIONAL),
        ev(server, stay, "session.started", 0, session="i", network=ABROAD),
        ev(server, stay, "session.started", 0, session="h"),
        ev(server, stay, "session.updated", 60, 7, 9, session="h"),
    ])
    assert result.sessions_refused == 3 and result.sessions_started == 1
    assert result.bytes_counted == 16
    assert account.client.wireless.v1.sims(off_sid).data_sessions.list() == []
    [home] = account.client.wireless.v1.sims(stay_sid).data_sessions.list()
    assert home.operator_mcc == HOME[0] and home.operator_mnc == HOME[1]
    assert usage_total(server, off_sid) == 0 and usage_total(server, stay_sid) == 16
    with server.runtime.db.read() as db:
        reasons = dict(db.execute(select(DataSession.session_id, DataSession.end_reason)
                                  .where(DataSession.sim_sid == stay_sid)).all())
    assert reasons == {"n": "ROAMING_DISABLED", "i": "ROAMING_DISABLED", "h": None}


def test_a_suspended_sim_gets_no_data(server, account):
    sid, imsi = sim_on(server, account)
    account.client.wireless.v1.sims(sid).update(status="suspended")
    result = ingest(server.runtime, [ev(server, imsi, "session.started", 0),
                                     ev(server, imsi, "session.updated", 60, 100, 100)])
    assert result.sessions_refused == 1 and result.bytes_counted == 0


def test_data_stops_at_the_limit_and_no_new_session_starts(server, account):
    sid, imsi = sim_on(server, account, data_limit=1)  # 1 MB a month
    result = ingest(server.runtime, [
        ev(server, imsi, "session.started", 0),
        ev(server, imsi, "session.updated", 360, 100_000, 400_000),
        ev(server, imsi, "session.updated", 720, 300_000, 900_000),  # crosses the limit
        ev(server, imsi, "session.updated", 1080, 400_000, 1_900_000),  # the network blocked it
        ev(server, imsi, "session.started", 1200, session="s2"),
    ])
    assert result.sessions_blocked == 1 and result.sessions_refused == 1
    assert result.bytes_counted == MB and usage_total(server, sid) == MB
    [session] = account.client.wireless.v1.sims(sid).data_sessions.list()
    assert session.end is not None
    with server.runtime.db.read() as db:
        row = db.execute(select(DataSession).where(DataSession.sim_sid == sid,
                                                   DataSession.session_id == "s1")).scalar_one()
        assert row.bytes_up + row.bytes_down == MB and row.end_reason == "DATA_LIMIT_REACHED"
        assert db.get(SimState, sid).used_home == MB


def test_throttled_plans_are_not_capped(server, account):
    _sid, imsi = sim_on(server, account, data_limit=1, data_limit_strategy="throttle")
    result = ingest(server.runtime, [ev(server, imsi, "session.started", 0),
                                     ev(server, imsi, "session.updated", 60, MB, 2 * MB)])
    assert result.bytes_counted == 3 * MB and result.sessions_blocked == 0


def test_limits_are_metered_a_month_from_activation_not_by_calendar_month(server, account):
    """As Twilio meters a rate plan's limits: from the day (and time) of activation to the same
    day the next month."""
    now = server.clock.now()
    activation = (now.replace(day=1, hour=10, minute=0, second=0) + timedelta(days=32)).replace(
        day=15)
    server.clock.set(activation)  # forward: the next month's 15th, 10:00
    sid, imsi = sim_on(server, account, data_limit=1)  # active from now

    def at(when):
        return (when - activation).total_seconds()

    result = ingest(server.runtime, [ev(server, imsi, "session.started", 0),
                                     ev(server, imsi, "session.updated", 60, 0, 2 * MB)])
    assert result.bytes_counted == MB and result.sessions_blocked == 1
    calendar_month = (activation + timedelta(days=20)).replace(day=1, hour=0)
    renewal = add_months(activation, 1)
    for when in (calendar_month, renewal - timedelta(seconds=1)):  # still the same period
        result = ingest(server.runtime, [ev(server, imsi, "session.started", at(when),
                                            session=f"s{when}")])
        assert result.sessions_refused == 1 and result.sessions_started == 0, when
    result = ingest(server.runtime, [
        ev(server, imsi, "session.started", at(renewal), session="s2"),
        ev(server, imsi, "session.updated", at(renewal) + 60, 0, 500_000, session="s2")])
    assert result.sessions_started == 1 and result.bytes_counted == 500_000
    assert usage_total(server, sid) == MB + 500_000
    with server.runtime.db.read() as db:
        state = db.get(SimState, sid)
        assert (state.period, state.used_home) == (renewal.strftime("%Y-%m-%dT%H:%M:%S"), 500_000)


def test_a_sim_is_activated_once(server, account):
    """The first move to active starts the metering; suspending and resuming keeps it."""
    account.client.wireless.v1.rate_plans.create(unique_name="later")
    [sid] = server.provision(account.sid, 1, status="ready", rate_plan="later")
    sims = account.client.wireless.v1.sims

    def activated():
        with server.runtime.db.read() as db:
            return db.scalar(select(Sim.date_activated).where(Sim.sid == sid))

    assert activated() is None  # a ready SIM's usage counts by calendar month
    server.clock.advance(3600)
    first = server.clock.now()
    sims(sid).update(status="active")
    assert activated() == first
    server.clock.advance(3600)
    sims(sid).update(status="suspended")
    server.clock.advance(3600)
    sims(sid).update(status="active")
    assert activated() == first


def test_a_crash_mid_batch_leaves_nothing_half_counted(server, account, monkeypatch):
    sid, imsi = sim_on(server, account)
    batch = [ev(server, imsi, "session.started", 0),
             ev(server, imsi, "session.updated", 360, 1000, 2000),
             ev(server, imsi, "attachment.accepted", 400)]
    real = ingest_module.add_usage

    def crash(*args, **kwargs):
        raise RuntimeError("the process died while writing the rollups")

    monkeypatch.setattr(ingest_module, "add_usage", crash)
    with pytest.raises(RuntimeError):
        ingest(server.runtime, batch)  # sessions and states were written before the crash
    with server.runtime.db.read() as db:
        assert db.scalar(select(func.count()).select_from(DataSession)
                         .where(DataSession.sim_sid == sid)) == 0
        assert db.get(SimState, sid) is None
    assert usage_total(server, sid) == 0
    monkeypatch.setattr(ingest_module, "add_usage", real)
    assert ingest(server.runtime, batch).bytes_counted == 3000  # the gateway retries the batch
    assert ingest(server.runtime, batch).bytes_counted == 0
    assert usage_total(server, sid) == 3000


def test_a_ready_sim_turns_active_after_250_kb(server, account):
    account.client.wireless.v1.rate_plans.create(unique_name="p")
    [sid] = server.provision(account.sid, 1, status="ready", rate_plan="p")
    with server.runtime.db.read() as db:
        imsi = db.scalar(select(Sim.imsi).where(Sim.sid == sid))
    ingest(server.runtime, [ev(server, imsi, "session.started", 0),
                            ev(server, imsi, "session.updated", 60, 50_000, 150_000)])
    server.drain()
    assert account.client.wireless.v1.sims(sid).fetch().status == "ready"
    # The rest in the next calendar month: the allowance is for the whole time it is ready.
    now = server.clock.now()
    next_month = (now.replace(day=1, hour=0, minute=0, second=0) + timedelta(days=32)).replace(
        day=1)
    ingest(server.runtime, [ev(server, imsi, "session.updated",
                               (next_month - now).total_seconds(), 60_000, 200_000)])
    server.drain()
    assert account.client.wireless.v1.sims(sid).fetch().status == "active"


CRASHING_INGEST = """
import sys, time
from datetime import datetime, timedelta
from simplane.config import Settings
from simplane.core.runtime import Runtime
from simplane.core.clock import add_months
from simplane.network import ingest as ingest_module
from simplane.network.events import NetworkEvent

url, imsi, start = sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3])
real = ingest_module.add_usage

def stall(*args, **kwargs):
    real(*args, **kwargs)
    print("rollups written, not committed", flush=True)
    time.sleep(120)

ingest_module.add_usage = stall
events = [NetworkEvent("session.started", imsi, start, session_id="k9")] + [
    NetworkEvent("session.updated", imsi, start + timedelta(minutes=6 * i), session_id="k9",
                 bytes_up=100 * i, bytes_down=300 * i) for i in range(1, 200)]
ingest_module.ingest(Runtime(Settings(database_url=url, run_workers=False)), events)
"""


def test_a_process_killed_mid_batch_leaves_nothing_half_counted(server, account, database_url):
    import os
    import signal
    import subprocess
    import sys

    sid, imsi = sim_on(server, account)
    start = server.clock.now().replace(microsecond=0)
    process = subprocess.Popen([sys.executable, "-c", CRASHING_INGEST, database_url, imsi,
                                start.isoformat()], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "SIMPLANE_LOG_LEVEL": "warning"})
    try:
        assert process.stdout.readline().startswith("rollups written")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert usage_total(server, sid) == 0
    with server.runtime.db.read() as db:
        assert db.scalar(select(func.count()).select_from(DataSession)
                         .where(DataSession.sim_sid == sid)) == 0
    replay = [ev(server, imsi, "session.started", 0, session="k9")] + [
        NetworkEvent("session.updated", imsi, start + timedelta(minutes=6 * i), session_id="k9",
                     bytes_up=100 * i, bytes_down=300 * i) for i in range(1, 200)]
    assert ingest(server.runtime, replay).bytes_counted == 400 * 199
    assert usage_total(server, sid) == 400 * 199


def test_periods_kept_per_anchor_are_those_worked_out_each_time():
    """`period_of` keeps a SIM's billing period until it ends: at every moment it gives what
    working it out afresh gives, across month ends, activation and the end of a ready period."""
    from datetime import UTC, datetime

    from simplane.core.clock import utc
    from simplane.network import policy
    from simplane.network.policy import FleetPlan, Plan, calendar_month, period_of
    from simplane.supersim.access import SimFacts

    def afresh(plan, when):  # type: ignore[no-untyped-def]
        start = plan.period_start(when) or calendar_month(when)
        return utc(start).strftime("%Y-%m-%dT%H:%M:%S"), plan.period_end(when)

    t0 = datetime(2026, 1, 30, 12, tzinfo=UTC)
    activated = datetime(2026, 3, 31, 8, 30, tzinfo=UTC)
    plans = [Plan("active", False, activated=None), Plan("active", False, activated=activated)]
    for ready, active in ((None, None), (t0 + timedelta(days=3), None),
                          (t0 + timedelta(days=3), activated), (None, activated)):
        plans.append(FleetPlan(SimFacts("HS1", "AC1", "89", "001", None, "active", "HF1", True,
                                        None, frozenset(), ready, active)))
    policy._periods.clear()
    for plan in plans:
        for hours in [*range(0, 24 * 200, 7), *range(24 * 200, 0, -11)]:  # and back in time
            when = t0 + timedelta(hours=hours)
            assert period_of(plan, when) == afresh(plan, when), (plan, when)
