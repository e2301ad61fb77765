"""The database's clock: one "now" for every process on a database, that admin accounts move
(GET/POST /admin/v1/Clock, `simplane clock`), running what falls due on the way in time order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from typer.testing import CliRunner

from simplane.cli import app
from simplane.config import Settings
from simplane.core.clock import ClockError, Duration, ManualClock, add_months, iso, parse_duration
from simplane.core.runtime import Runtime
from simplane.core.virtual_clock import DatabaseClock, advance_clock, set_clock
from tests.conftest import _fernet_key, _postgres_database
from tests.events.conftest import ALL_CONNECTION_TYPES, Fleet, active_webhook, subscribe
from tests.support import Server, start_server, statements_sent

runner = CliRunner()


def sim(server: Server, account, status: str) -> str:  # type: ignore[no-untyped-def]
    account.client.wireless.v1.rate_plans.create(unique_name="plan")
    [sid] = server.provision(account.sid, 1, status=status, rate_plan="plan")
    return sid


def clock_api(server: Server, account, method: str = "GET",  # type: ignore[no-untyped-def]
              **data: str) -> httpx.Response:
    return httpx.request(method, f"{server.base_url}/admin/v1/Clock", data=data or None,
                         auth=(account.sid, account.token), timeout=60)


@pytest.fixture
def admin(server):  # type: ignore[no-untyped-def]
    return server.new_account(admin=True)


# --- the endpoint ------------------------------------------------------------------------------

def test_an_admin_reads_the_clock(server, admin):
    response = clock_api(server, admin)
    assert response.status_code == 200, response.text
    assert response.json() == {"now": iso(server.clock.now()), "mode": "virtual", "speed": 0.0}


def test_advancing_by_an_iso_duration_seconds_or_to_a_time(server, admin):
    start = server.clock.now()
    response = clock_api(server, admin, "POST", Advance="P1DT2H")
    assert response.status_code == 200, response.text
    assert response.json()["now"] == iso(start + timedelta(days=1, hours=2))
    assert server.clock.now() == start + timedelta(days=1, hours=2)
    assert clock_api(server, admin, "POST", Advance="90").json()["now"] == iso(
        start + timedelta(days=1, hours=2, seconds=90))
    later = start + timedelta(days=3)
    assert clock_api(server, admin, "POST", Time=iso(later)).json()["now"] == iso(later)
    assert clock_api(server, admin, "POST", Advance="P1M").json()["now"] == iso(
        add_months(later, 1))  # calendar months


def test_parameters_are_checked_and_named(server, admin):
    start = server.clock.now()
    for data, named in (({}, "Advance or Time"), ({"Advance": "soon"}, "Advance"),
                        ({"Advance": "-5"}, "Advance"), ({"Time": "tomorrow"}, "Time"),
                        ({"Advance": "1h", "Time": iso(start)}, "Time"),
                        ({"Advance": "P99999999999D"}, "Advance"),
                        ({"Advance": "P9000Y"}, "Advance")):
        response = clock_api(server, admin, "POST", **data)
        assert response.status_code == 400, (data, response.text)
        body = response.json()
        assert body["code"] == 20001 and named in body["message"], body
        assert set(body) == {"code", "message", "more_info", "status"}
    assert server.clock.now() == start  # nothing moved


def test_only_admin_accounts_see_or_move_the_clock(server, account):
    start = server.clock.now()
    for method, data in (("GET", {}), ("POST", {"Advance": "P90D"})):
        response = clock_api(server, account, method, **data)
        assert response.status_code == 403 and response.json()["code"] == 20403
    assert httpx.get(f"{server.base_url}/admin/v1/Clock").status_code == 401
    assert server.clock.now() == start


# --- what falls due on the way runs, in time order -------------------------------------------

def test_a_ready_sim_becomes_active_three_months_on(server, account, admin):
    """Twilio: a `ready` SIM moves to `active` after 3 months (or its data allowance)."""
    ready = server.clock.now()
    sid = sim(server, account, "ready")
    sims = account.client.wireless.v1.sims
    due = add_months(ready, 3)
    response = clock_api(server, admin, "POST", Advance=str(int((due - ready).total_seconds()) - 1))
    assert response.status_code == 200
    assert sims(sid).fetch().status == "ready"
    assert clock_api(server, admin, "POST", Advance="P95D").status_code == 200
    fetched = sims(sid).fetch()
    assert fetched.status == "active"
    assert fetched.date_updated == due  # moved when it fell due, not when the call ended


def test_a_deactivated_sim_is_canceled_72_hours_on(server, account, admin):
    """Twilio: a `deactivated` SIM becomes `canceled` 72 hours later."""
    sid = sim(server, account, "active")
    sims = account.client.wireless.v1.sims
    deactivated = sims(sid).update(status="deactivated")
    assert clock_api(server, admin, "POST", Advance="PT71H59M59S").status_code == 200
    assert sims(sid).fetch().status == "deactivated"
    assert clock_api(server, admin, "POST", Advance="P10D").status_code == 200
    fetched = sims(sid).fetch()
    assert fetched.status == "canceled"
    assert fetched.date_updated == deactivated.date_updated + timedelta(hours=72)


def test_proxy_sessions_expire_in_order_on_the_way(server, account, admin):
    proxy = account.client.proxy.v1
    service = proxy.services.create(unique_name="rides")
    sessions = proxy.services(service.sid).sessions
    created = server.clock.now()
    short, long, forever = (sessions.create(ttl=600), sessions.create(ttl=7200),
                            sessions.create())
    assert clock_api(server, admin, "POST", Advance="6h").status_code == 200
    short, long, forever = (sessions(s.sid).fetch() for s in (short, long, forever))
    assert (short.status, long.status, forever.status) == ("closed", "closed", "open")
    assert short.date_ended == created + timedelta(seconds=600)
    assert long.date_ended == created + timedelta(seconds=7200)


def test_event_streams_retries_then_fails_past_the_horizon(server, account, admin, receiver):
    """A failing sink is retried with backoff for 4 hours (Twilio's horizon), then `failed`:
    all of it within one call that advances the clock by 5 hours."""
    events = account.client.events.v1
    sink = active_webhook(account, server, receiver)
    subscribe(account, sink, ALL_CONNECTION_TYPES)
    from simplane.events import outbox

    with server.runtime.db.write() as db:
        outbox.publish_many(db, Fleet(account.sid, sims=1).rows(updates=0))
    receiver.statuses = [503] * 1000
    failing_since = server.clock.now()
    server.drain()
    assert receiver.requests.qsize() == 1 and events.sinks(sink.sid).fetch().status == "active"
    assert clock_api(server, admin, "POST", Advance="PT3H59M").status_code == 200
    assert events.sinks(sink.sid).fetch().status == "active"
    retried = receiver.requests.qsize()
    assert retried > 15  # 1, 2, 4 … seconds apart, then every 10 minutes or so
    assert clock_api(server, admin, "POST", Advance="PT1H").status_code == 200
    assert events.sinks(sink.sid).fetch().status == "failed"
    assert receiver.requests.qsize() > retried
    assert server.clock.now() == failing_since + timedelta(hours=4, minutes=59)


def test_a_time_may_be_set_either_way_and_forward_runs_what_falls_due(server, account, admin):
    sid = sim(server, account, "active")
    sims = account.client.wireless.v1.sims
    sims(sid).update(status="deactivated")
    start = server.clock.now()
    assert clock_api(server, admin, "POST", Time=iso(start - timedelta(days=30))).json()[
        "now"] == iso(start - timedelta(days=30))
    assert sims(sid).fetch().status == "deactivated"
    assert clock_api(server, admin, "POST", Time=iso(start + timedelta(hours=80))).status_code \
        == 200
    assert sims(sid).fetch().status == "canceled"


# --- the database's clock, across processes ---------------------------------------------------

def test_a_command_on_the_database_uses_its_virtual_clock(server, account, database_url):
    result = runner.invoke(app, ["sims", "provision", "--count", "1", "--account", account.sid,
                                 "--database-url", database_url])
    assert result.exit_code == 0, result.output
    [sid] = result.stdout.split()
    now = server.clock.now()
    assert abs(now - datetime.now(UTC)) > timedelta(minutes=1)  # not the wall clock's
    assert account.client.wireless.v1.sims(sid).fetch().date_created == now


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fresh_url(request, tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('clock') / 'simplane.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture(scope="module")
def real_server(fresh_url: str) -> Iterator[Server]:
    """A server on a database nobody made virtual: real time."""
    settings = Settings(database_url=fresh_url, secret_key=_fernet_key(), run_workers=False)
    srv = start_server(Runtime(settings))
    yield srv
    srv.stop()


def runtime_on(server: Server, **clock_options) -> Runtime:  # type: ignore[no-untyped-def]
    """Another process on the server's database."""
    runtime = Runtime(Settings(database_url=server.runtime.settings.database_url,
                               secret_key=server.runtime.settings.secret_key,
                               run_workers=False), migrate=False)
    if clock_options:
        runtime.clock = DatabaseClock(runtime.db, **clock_options)
    return runtime


def test_on_real_time_moving_answers_409_saying_how_to_start_a_virtual_clock(real_server):
    admin = real_server.new_account(admin=True)
    response = clock_api(real_server, admin)
    assert response.status_code == 200
    body = response.json()
    assert body["mode"] == "real" and body["speed"] == 1.0
    assert abs(datetime.fromisoformat(body["now"]) - datetime.now(UTC)) < timedelta(minutes=1)
    for data in ({"Advance": "P90D"}, {"Time": "2030-01-01T00:00:00Z"}):
        response = clock_api(real_server, admin, "POST", **data)
        assert response.status_code == 409, response.text
        assert "simplane serve --clock virtual" in response.json()["message"]
    result = runner.invoke(app, ["clock", "advance", "90d", "--database-url",
                                 real_server.runtime.settings.database_url])
    assert result.exit_code == 1 and "simplane serve --clock virtual" in result.output
    with pytest.raises(ClockError):
        real_server.runtime.clock.advance(60)


def test_every_process_on_the_database_reads_and_moves_one_clock(real_server):
    admin = real_server.new_account(admin=True)
    url = real_server.runtime.settings.database_url
    ticks = [0.0]
    server_clock = DatabaseClock(real_server.runtime.db, refresh=0.1, monotonic=lambda: ticks[0])
    real_server.runtime.clock = server_clock
    other = runtime_on(real_server)
    try:
        start = datetime(2030, 5, 1, tzinfo=UTC)
        other.clock.start_virtual(start, speed=0)  # as `serve --clock virtual` would
        ticks[0] += 0.1
        assert clock_api(real_server, admin).json() == {"now": iso(start), "mode": "virtual",
                                                        "speed": 0.0}
        result = runner.invoke(app, ["clock", "advance", "6h", "--database-url", url])
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith(iso(start + timedelta(hours=6)))
        assert server_clock.now() == start  # read 0.1 s ago: kept...
        with statements_sent(real_server.runtime.db.read_engine) as sent:
            for _ in range(1000):
                server_clock.now()
        assert sent == []  # ...without asking the database
        ticks[0] += 0.1
        assert server_clock.now() == start + timedelta(hours=6)  # ...until 0.1 s have passed
        response = clock_api(real_server, admin, "POST", Advance="P90D")
        assert response.json()["now"] == iso(start + timedelta(days=90, hours=6))
        other.clock.refresh()
        assert other.clock.now() == start + timedelta(days=90, hours=6)
        result = runner.invoke(app, ["clock", "set", "2031-01-01", "--database-url", url])
        assert result.exit_code == 0, result.output
        result = runner.invoke(app, ["clock", "show", "--database-url", url])
        assert result.stdout.split() == ["2031-01-01T00:00:00Z", "virtual", "speed", "0"]
        result = runner.invoke(app, ["clock", "advance", "soon", "--database-url", url])
        assert result.exit_code == 2 and "not a duration" in result.output
    finally:
        other.clock.use_real()
        other.close()
    server_clock.refresh()
    assert clock_api(real_server, admin).json()["mode"] == "real"


def test_a_virtual_clock_runs_at_its_speed_from_where_it_was_moved(real_server):
    wall = [1_000_000.0]
    clock = DatabaseClock(real_server.runtime.db, refresh=0, wall=lambda: wall[0])
    start = datetime(2030, 1, 1, tzinfo=UTC)
    try:
        assert clock.start_virtual(start, speed=60) == start
        wall[0] += 10
        assert clock.now() == start + timedelta(minutes=10)
        assert clock.advance("1h") == start + timedelta(hours=1, minutes=10)
        wall[0] += 1.5
        assert clock.now() == start + timedelta(hours=1, minutes=11, seconds=30)
        assert (clock.mode, clock.speed) == ("virtual", 60.0)
        assert clock.start_virtual() == start + timedelta(hours=1, minutes=11, seconds=30)
        assert clock.speed == 60.0  # kept when not given again
    finally:
        clock.use_real()
    assert clock.mode == "real"


def test_a_clock_put_back_by_a_restore_is_read_as_it_is(real_server):
    """A restored database's clock row may carry an earlier version than the one a process
    last read: it is still the clock."""
    from sqlalchemy import update

    from simplane.core.models import ClockState

    clock = DatabaseClock(real_server.runtime.db, refresh=0)
    try:
        clock.start_virtual(datetime(2030, 1, 1, tzinfo=UTC), speed=0)
        clock.advance("P1D")
        with real_server.runtime.db.write() as db:
            db.execute(update(ClockState).values(virtual_base=datetime(2029, 6, 1, tzinfo=UTC),
                                                 version=0))
        assert clock.now() == datetime(2029, 6, 1, tzinfo=UTC)
    finally:
        clock.use_real()


def test_serve_clock_options_are_checked():
    for args, named in ((["--clock", "fast"], "--clock"),
                        (["--clock-start", "2030-01-01"], "--clock-start"),
                        (["--clock", "virtual", "--clock-start", "someday"], "--clock-start"),
                        (["--clock", "virtual", "--clock-speed", "-1"], "--clock-speed")):
        result = runner.invoke(app, ["serve", *args, "--database-url", "sqlite:///:memory:"])
        assert result.exit_code == 2 and named in result.output, result.output


# --- durations ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("3600", Duration(time=timedelta(hours=1))), ("90d", Duration(time=timedelta(days=90))),
    ("6h", Duration(time=timedelta(hours=6))), ("15m", Duration(time=timedelta(minutes=15))),
    ("30s", Duration(time=timedelta(seconds=30))), ("P90D", Duration(time=timedelta(days=90))),
    ("PT6H", Duration(time=timedelta(hours=6))), ("P3M", Duration(months=3)),
    ("P1Y2M", Duration(months=14)), ("P1DT12H30M", Duration(time=timedelta(days=1.5, minutes=30))),
    ("P2W", Duration(time=timedelta(weeks=2))), ("PT0.5S", Duration(time=timedelta(seconds=0.5))),
])
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "P1DT", "-5", "5x", "1h30m", "P1H", "T1H"])
def test_not_durations(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_a_manual_clock_moves_by_calendar_months():
    clock = ManualClock(datetime(2026, 1, 31, tzinfo=UTC))
    assert clock.advance("P1M") == datetime(2026, 2, 28, tzinfo=UTC)
    assert clock.advance(timedelta(days=1)) == datetime(2026, 3, 1, tzinfo=UTC)
    assert clock.advance(3600.0) == datetime(2026, 3, 1, 1, tzinfo=UTC)


def test_a_clock_advances_only_forward(server):
    start = server.clock.now()
    with pytest.raises(ValueError, match="not negative"):
        advance_clock(server.runtime, timedelta(seconds=-1))
    assert server.clock.now() == start
    assert set_clock(server.runtime, start - timedelta(days=1)) == start - timedelta(days=1)
    assert advance_clock(server.runtime, "P1D") == start
