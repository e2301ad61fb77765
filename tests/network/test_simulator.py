"""The fleet simulator: a small fleet for a simulated day, checked through the official client
and the data sessions ingest wrote."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from stdnum import luhn

from simplane.core.clock import utc
from simplane.network.events import operator
from simplane.network.models import DataSession
from simplane.network.policy import roaming_class
from simplane.network.simulator import BOXES, MB, Device, SimSpec, simulate

SEED = 11
FLEET = 20
LIMIT_MB = 20


def run(server, seed=SEED):
    account = server.new_account()
    start = (server.clock.now() - timedelta(hours=24)).replace(minute=0, second=0)
    result = simulate(server.runtime, account.sid, sims=FLEET, hours=24, seed=seed, start=start,
                      data_limit=LIMIT_MB, batch_size=2000)
    with server.runtime.db.read() as db:
        sessions = list(db.scalars(select(DataSession).where(
            DataSession.account_sid == account.sid).order_by(DataSession.start, DataSession.pk)))
        db.expunge_all()
    return account, result, sessions


@pytest.fixture(scope="module")
def fleet(server):
    return run(server)


def per_sim(sessions):
    found = defaultdict(list)
    for s in sessions:
        found[s.sim_sid].append(s)
    return found


def test_the_fleet_is_provisioned_and_every_behaviour_is_drawn(fleet):
    account, result, sessions = fleet
    assert len(result.sims) == FLEET and result.account_sid == account.sid
    assert result.unknown_imsi == 0 and result.batches > 1
    assert set(result.behaviours.values()) >= {"tracker", "reporter", "heavy"}
    plans = account.client.wireless.v1.rate_plans.list()
    assert [p.data_limit for p in plans] == [LIMIT_MB]
    sims = account.client.wireless.v1.sims.list()
    assert len(sims) == FLEET and {s.status for s in sims} == {"active"}
    assert result.kinds["session.started"] == len(sessions)
    assert result.bytes_counted == sum(s.bytes_up + s.bytes_down for s in sessions)


def test_usage_records_equal_the_data_session_counters(fleet):
    account, result, sessions = fleet
    window = {"start": result.start, "end": result.end + timedelta(hours=1)}
    grand = 0
    for sim_sid, mine in per_sim(sessions).items():
        [record] = account.client.wireless.v1.sims(sim_sid).usage_records.list(
            granularity="all", **window)
        counted = sum(s.bytes_up + s.bytes_down for s in mine)
        assert record.data["total"] == counted
        assert record.data["upload"] == sum(s.bytes_up for s in mine)
        grand += counted
    [whole] = account.client.wireless.v1.usage_records.list(granularity="all", **window)
    assert whole.data["total"] == grand > 0


def test_sessions_never_overlap_and_every_one_ends_or_is_still_open(fleet):
    _, result, sessions = fleet
    for mine in per_sim(sessions).values():
        for i, s in enumerate(mine):
            assert s.status in ("open", "ended", "failed")
            if s.status == "open":
                assert s.end is None and i == len(mine) - 1  # only the last one is still open
            else:
                assert s.start <= s.end <= result.end
            if i:
                assert mine[i - 1].end is not None and mine[i - 1].end <= s.start


def test_devices_look_real(fleet):
    _, _, sessions = fleet
    assert {s.radio_link for s in sessions} <= {"LTE", "LTE-M", "NB-IoT", "2G", "3G", "5G"}
    for s in sessions:
        luhn.validate(s.imei)
        assert len(s.imei) == 15
        assert s.operator_country and s.operator_name
        south, west, north, east = BOXES[s.operator_country]
        assert south <= s.lat <= north and west <= s.lon <= east
    assert {s.status for s in sessions} >= {"ended", "open"}


def test_heavy_users_stop_at_their_limit(fleet):
    _, result, sessions = fleet
    heavy = [sid for sid, kind in result.behaviours.items() if kind == "heavy"]
    assert heavy
    totals = {sid: sum(s.bytes_up + s.bytes_down for s in mine)
              for sid, mine in per_sim(sessions).items()}
    for sid in heavy:
        assert totals[sid] == LIMIT_MB * MB  # reached, never passed
    assert all(total <= LIMIT_MB * MB for total in totals.values())


def test_the_same_seed_gives_the_same_fleet(server, fleet):
    def shape(result, sessions):
        found = per_sim(sessions)
        return [(result.behaviours[spec.sid],
                 [(s.start - result.start, s.status, s.roaming, s.operator_mcc, s.operator_mnc,
                   s.bytes_up, s.bytes_down, s.imei, s.lat) for s in found[spec.sid]])
                for spec in result.sims]

    _, first, first_sessions = fleet
    _, again, again_sessions = run(server)
    assert {s.imsi for s in again.sims}.isdisjoint({s.imsi for s in first.sims})
    assert shape(first, first_sessions) == shape(again, again_sessions)


def test_roamers_cross_borders_on_real_operators():
    from datetime import UTC, datetime

    start = datetime(2026, 1, 1, tzinfo=UTC)
    seen = set()
    for index in range(200):
        device = Device(SimSpec(index, f"DE{index}", "234150000000001", 10**12), 3, start,
                        start + timedelta(days=7))
        if device.behaviour != "roamer":
            continue
        for ev in device.events(360):
            if ev.kind == "session.started":
                op = operator(ev.mcc, ev.mnc)
                assert op.country in BOXES and op.name
                seen.add((roaming_class(ev.imsi, ev.mcc, ev.mnc), op.country))
    classes = {c for c, _ in seen}
    assert classes == {"home", "national", "international"}
    assert ("national", "GB") in seen and len({c for _, c in seen}) >= 4


def test_devices_send_commands_and_get_the_queued_ones_once_attached(server, receiver):
    from twilio.request_validator import RequestValidator

    from simplane.network.models import SimState

    account = server.new_account()
    wireless = account.client.wireless.v1
    wireless.rate_plans.create(unique_name="p", international_roaming=["data", "messaging"])
    sids = server.provision(account.sid, 12, status="active", rate_plan="p")
    for sid in sids:
        wireless.sims(sid).update(commands_callback_url=f"{receiver.url}/mo")
    queued = {sid: wireless.commands.create(sim=sid, command="config=1").sid for sid in sids}
    server.drain()
    assert {c.status for c in wireless.commands.list(direction="to_sim")} == {"queued"}

    simulate(server.runtime, account.sid, hours=24, seed=5)
    server.drain()
    with server.runtime.db.read() as db:
        attached = set(db.scalars(select(SimState.sim_sid).where(
            SimState.sim_sid.in_(sids), SimState.attached.is_(True))))
    assert attached, "some device should still be on the network"
    for sid, command_sid in queued.items():
        status = wireless.commands(command_sid).fetch().status
        assert status == ("delivered" if sid in attached else "queued"), (sid, status)

    received = wireless.commands.list(direction="from_sim")
    assert received and {c.status for c in received} == {"received"}
    got = receiver.get()
    params = {k: v[0] for k, v in got.form.items()}
    assert params["Direction"] == "from_sim" and params["Command"].startswith("reading=")
    assert RequestValidator(account.token).validate(got.url, params,
                                                    got.headers["X-Twilio-Signature"])
    [record] = wireless.usage_records.list(start=server.clock.now() - timedelta(days=1),
                                           end=server.clock.now() + timedelta(days=2))
    assert record.commands["from_sim"] == len(received)
    assert record.commands["to_sim"] == len(attached)


def test_serve_runs_the_simulated_fleet_live(tmp_path):
    """`simplane serve --simulate N`: the API shows the fleet's sessions while it runs."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    from tests.support import free_port

    port, sid, token = free_port(), "AC" + "5" * 32, "live-" + "0" * 27
    env = {**os.environ, "SIMPLANE_ACCOUNT_SID": sid, "SIMPLANE_AUTH_TOKEN": token,
           "SIMPLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'live.db'}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "simplane.cli", "serve", "--port", str(port), "--log-level",
         "warning", "--simulate", "5", "--simulate-speed", "3600"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        sessions: list = []
        while not sessions and time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                sims = httpx.get(f"http://127.0.0.1:{port}/wireless/v1/Sims",
                                 auth=(sid, token)).json().get("sims", [])
            except httpx.HTTPError:
                continue
            for sim in sims:
                sessions += httpx.get(f"http://127.0.0.1:{port}/wireless/v1/Sims/{sim['sid']}/"
                                      "DataSessions", auth=(sid, token)).json()["data_sessions"]
        assert sessions, process.stderr.read1().decode() if process.poll() is not None else ""
        assert {s["sim_sid"] for s in sessions} <= {s["sid"] for s in sims}
        assert len(sims) == 5
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_simulate_command_runs_a_super_sim_fleet(server, database_url):
    from typer.testing import CliRunner

    from simplane.cli import app

    account = server.new_account()
    outcome = CliRunner().invoke(app, ["simulate", "--sims", "4", "--hours", "2", "--fast",
                                       "--product", "supersim", "--account", account.sid,
                                       "--database-url", database_url])
    assert outcome.exit_code == 0, outcome.output
    assert "4 SIMs" in outcome.output
    assert len(account.client.supersim.v1.sims.list(status="active")) == 4
    bad = CliRunner().invoke(app, ["simulate", "--product", "nope", "--database-url",
                                   database_url])
    assert bad.exit_code != 0 and "--product" in bad.output


def test_a_fast_run_fills_the_hours_up_to_now_so_default_usage_records_show_it(server):
    """What a newcomer does first: `simulate --fast`, then UsageRecords with no window."""
    account = server.new_account()
    now = server.clock.now()
    result = simulate(server.runtime, account.sid, sims=8, hours=6, seed=3)
    assert (result.start, result.end) == (now - timedelta(hours=6), now)
    with server.runtime.db.read() as db:
        latest = db.scalar(select(func.max(DataSession.last_updated))
                           .where(DataSession.account_sid == account.sid))
    assert utc(latest) <= now
    [record] = account.client.wireless.v1.usage_records.list()
    assert record.data["total"] == result.bytes_counted > 0


def test_a_window_after_the_servers_now_is_refused_before_anything_is_written(
        server, database_url):
    from typer.testing import CliRunner

    from simplane.cli import app
    from simplane.network.simulator import WindowError

    account = server.new_account()
    now = server.clock.now()
    for start, end in ((now - timedelta(hours=1), None), (None, now + timedelta(minutes=1))):
        with pytest.raises(WindowError, match="after the server's now"):
            simulate(server.runtime, account.sid, sims=2, hours=2, start=start, end=end)
    with pytest.raises(WindowError, match="after the server's now"):  # live, starting later
        simulate(server.runtime, account.sid, sims=2, speed=60, start=now + timedelta(hours=1))
    assert account.client.wireless.v1.sims.list() == []  # nothing provisioned
    outcome = CliRunner().invoke(app, ["simulate", "--sims", "2", "--fast", "--start",
                                       "2999-01-01T00:00:00", "--account", account.sid,
                                       "--database-url", database_url])
    assert outcome.exit_code == 2 and "after the server's now" in outcome.output
    assert account.client.wireless.v1.sims.list() == []


def test_a_live_run_never_dates_an_event_after_the_servers_clock(server):
    """However fast the speed, a live run waits for the server's clock: here the only way it
    can wait is by `sleep`, which moves the server's (manual) clock on."""
    account = server.new_account()
    start = server.clock.now() - timedelta(minutes=30)
    seen = []

    def sleep(seconds: float) -> None:
        server.clock.advance(timedelta(seconds=max(seconds, 1)))

    def progress(done: float, total: float) -> None:
        with server.runtime.db.read() as db:
            latest = db.scalar(select(func.max(DataSession.last_updated))
                               .where(DataSession.account_sid == account.sid))
        if latest is not None:
            seen.append(utc(latest))
            assert utc(latest) <= server.clock.now()

    result = simulate(server.runtime, account.sid, sims=6, hours=2, seed=4, speed=1e9,
                      start=start, interval=60, sleep=sleep, progress=progress)
    assert seen and max(seen) > start + timedelta(minutes=31)  # it went on past the first now
    assert server.clock.now() >= max(seen)
    assert result.end == start + timedelta(hours=2)


def test_a_live_run_starts_a_minute_of_real_time_behind_the_clock(server):
    from simplane.network.simulator import window

    now = server.clock.now()
    assert window(now, 1, speed=1) == (now, now + timedelta(hours=1))
    assert window(now, 1, speed=61)[0] == now - timedelta(hours=1)
    assert window(now, 1, speed=3600)[0] == now - timedelta(days=1)


def test_super_sims_that_cannot_attach_are_not_simulated(server):
    from simplane.supersim import inventory

    account = server.new_account()
    result = simulate(server.runtime, account.sid, sims=2, hours=1, product="supersim")
    with server.runtime.db.write() as db:  # two `new` SIMs in the account, never activated
        fresh = inventory.add_sims(db, inventory.generated_rows(2), server.clock.now(),
                                   account.sid)
    again = simulate(server.runtime, account.sid, hours=1, product="supersim")
    assert {s.sid for s in again.sims} == {s.sid for s in result.sims}
    assert {s.status for s in again.sims} == {"active"}
    assert not {r["sid"] for r in fresh} & {s.sid for s in again.sims}


def test_live_simulated_super_sims_take_ip_commands_and_answer(server):
    """A live run's devices are reached through their simulated packet gateway (a loopback UDP
    port), so an IP Command is sent, the device gets it, and its answer comes back as a
    from-SIM IP Command from the device's own address and port."""
    import base64
    import select as io

    from simplane.supersim import udp
    from simplane.supersim.models import Sim as SuperSim

    account = server.new_account()
    supersim = account.client.supersim.v1
    port = udp.command_port(server.runtime)
    seen: dict[str, str] = {}

    def sleep(seconds: float) -> None:  # the run waits for the clock: act meanwhile
        server.clock.advance(timedelta(seconds=max(seconds, 1)))
        if seen:
            return
        with server.runtime.db.read() as db:
            found = db.execute(select(SuperSim.sid, SuperSim.ip_address).where(
                SuperSim.account_sid == account.sid, SuperSim.ip_address.is_not(None))).first()
        if found is None:
            return
        command = supersim.ip_commands.create(sim=found.sid, payload="ping", device_port=6001)
        server.drain()
        assert supersim.ip_commands(command.sid).fetch().status == "sent"
        if not supersim.ip_commands.list(direction="from_sim"):  # its answer is on its way
            readable, _, _ = io.select([port.sock], [], [], 10)
            assert readable
            server.drain()
        [answer] = supersim.ip_commands.list(direction="from_sim")
        assert base64.b64decode(answer.payload) == b"ack ping"
        assert (answer.sim_sid, answer.device_ip, answer.device_port) == (
            found.sid, found.ip_address, 6001)
        seen[found.sid] = found.ip_address

    simulate(server.runtime, account.sid, sims=6, hours=1, seed=4, speed=1e9,
             start=server.clock.now() - timedelta(minutes=30), interval=60, sleep=sleep,
             product="supersim")
    assert seen, "a device was on the network while the run waited for the clock"
    with server.runtime.db.read() as db:  # the gateway stopped with the run: its sessions ended
        assert not db.scalars(select(DataSession.pk).where(
            DataSession.account_sid == account.sid, DataSession.status == "open")).all()
        assert not db.scalars(select(SuperSim.ip_address).where(
            SuperSim.account_sid == account.sid, SuperSim.ip_address.is_not(None))).all()


def test_super_sims_a_fast_run_left_online_take_ip_commands_from_virtual_devices(server):
    """Nothing runs a `--fast` run's devices once it is over, but their sessions are still open:
    a virtual device gets each IP Command sent to them and answers as a simulated device does."""
    import base64

    from simplane.supersim.models import Sim as SuperSim

    account = server.new_account()
    supersim = account.client.supersim.v1
    simulate(server.runtime, account.sid, sims=6, hours=2, seed=4, product="supersim")
    with server.runtime.db.read() as db:
        found = db.execute(select(SuperSim.sid, SuperSim.ip_address).where(
            SuperSim.account_sid == account.sid, SuperSim.ip_address.is_not(None))).first()
    assert found is not None, "some device is still online"
    command = supersim.ip_commands.create(sim=found.sid, payload="status?", device_port=7001)
    server.drain()
    assert supersim.ip_commands(command.sid).fetch().status == "sent"
    [answer] = supersim.ip_commands.list(direction="from_sim")
    assert base64.b64decode(answer.payload) == b"ack status?"
    assert (answer.sim_sid, answer.device_ip, answer.device_port) == (
        found.sid, found.ip_address, 7001)
