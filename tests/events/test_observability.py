from __future__ import annotations

from datetime import timedelta

from typer.testing import CliRunner

from simplane.cli import app
from simplane.events import outbox
from tests.events.conftest import ALL_CONNECTION_TYPES, Fleet, active_webhook, subscribe


def metric(server, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    text = server.metrics()
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_per_sink_counters_backlog_and_latency(account, server, receiver):  # type: ignore[no-untyped-def]
    sink = active_webhook(account, server, receiver)
    subscribe(account, sink, ALL_CONNECTION_TYPES)
    with server.runtime.db.write() as db:
        ids = outbox.publish_many(db, Fleet(account.sid, sims=10).rows(updates=1))  # 50
    receiver.statuses = [500]
    server.drain()
    assert metric(server, "simplane_event_deliveries_total", sink_sid=sink.sid,
                  outcome="retried") == len(ids)
    assert metric(server, "simplane_event_backlog", sink_sid=sink.sid) == len(ids)
    server.clock.advance(timedelta(minutes=20))
    server.drain()
    assert metric(server, "simplane_event_deliveries_total", sink_sid=sink.sid,
                  outcome="delivered") == len(ids)
    assert metric(server, "simplane_event_backlog", sink_sid=sink.sid) == 0
    assert metric(server, "simplane_event_delivery_latency_seconds_count",
                  sink_type="webhook") >= len(ids)


def test_sinks_command_shows_delivery_state(account, server, receiver):  # type: ignore[no-untyped-def]
    sink = active_webhook(account, server, receiver)
    subscribe(account, sink, ALL_CONNECTION_TYPES)
    with server.runtime.db.write() as db:
        ids = outbox.publish_many(db, Fleet(account.sid, sims=2).rows(updates=0))
    receiver.statuses = [503]
    server.drain()
    result = CliRunner().invoke(app, ["events", "sinks", "--database-url",
                                      server.runtime.settings.database_url,
                                      "--account", account.sid])
    assert result.exit_code == 0, result.output
    [line] = [row for row in result.output.splitlines() if sink.sid in row]
    cells = [cell.strip() for cell in line.strip("│ ").split("│")]
    assert cells[2:6] == ["webhook", "active", str(len(ids)), "1"]
    assert cells[7] == "HTTP 503"


def test_tail_prints_the_stream(account, server):  # type: ignore[no-untyped-def]
    rows = Fleet(account.sid, sims=2).rows(updates=0)
    with server.runtime.db.write() as db:
        ids = outbox.publish_many(db, rows)
    url = server.runtime.settings.database_url
    result = CliRunner().invoke(app, ["events", "tail", "--database-url", url, "--from-start",
                                      "--account", account.sid, "--no-follow"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[3] for line in lines] == ids
    first = lines[0].split()
    assert first[1] == rows[0]["type"] and first[2] == rows[0]["subject"]
    assert first[0] == rows[0]["time"].strftime("%Y-%m-%dT%H:%M:%S.000Z")
    result = CliRunner().invoke(app, ["events", "tail", "--database-url", url, "--from-start",
                                      "--account", account.sid, "--count", "2", "--type",
                                      "com.twilio.iot.supersim.connection.data-session"])
    assert result.exit_code == 0, result.output
    assert [line.split()[3] for line in result.output.splitlines()] == [
        r["data"]["event_sid"] for r in rows if ".data-session." in r["type"]][:2]


def test_outbox_keeps_a_week_and_every_backlog(account, server, receiver):  # type: ignore[no-untyped-def]
    import time

    from sqlalchemy import func, select

    from simplane.events import retention
    from simplane.events.models import OutboxEvent

    def kept(ids: list[str]) -> int:
        with server.runtime.db.read() as db:
            return db.scalar(select(func.count()).where(OutboxEvent.id.in_(ids)))

    sink = active_webhook(account, server, receiver)
    subscribe(account, sink, ALL_CONNECTION_TYPES)
    with server.runtime.db.write() as db:
        delivered = outbox.publish_many(db, Fleet(account.sid, sims=2).rows(updates=0))
    server.drain()
    receiver.statuses = [503] * 100
    with server.runtime.db.write() as db:
        backlog = outbox.publish_many(db, Fleet(account.sid, sims=2).rows(updates=0))
    server.drain()
    retention.prune(server.runtime)
    assert kept(delivered) == len(delivered)  # younger than a week
    later = time.time() + retention.KEEP_SECONDS + 60
    while retention.prune(server.runtime, now=later):
        pass
    assert kept(delivered) == 0
    assert kept(backlog) == len(backlog)  # the sink does not have them yet


def test_a_sink_without_subscriptions_does_not_hold_the_outbox(account, server, receiver):  # type: ignore[no-untyped-def]
    import time

    from sqlalchemy import func, select

    from simplane.events import retention
    from simplane.events.models import OutboxEvent
    from tests.events.conftest import webhook_sink

    sink = active_webhook(account, server, receiver)
    subscribe(account, sink, ALL_CONNECTION_TYPES)
    webhook_sink(account, receiver.url + "/never-validated")  # its cursor never moves
    with server.runtime.db.write() as db:
        delivered = outbox.publish_many(db, Fleet(account.sid, sims=2).rows(updates=0))
    server.drain()
    later = time.time() + retention.KEEP_SECONDS + 60
    while retention.prune(server.runtime, now=later):
        pass
    with server.runtime.db.read() as db:
        assert db.scalar(select(func.count()).where(OutboxEvent.id.in_(delivered))) == 0


def test_backlog_gauge_is_set_after_every_delivery_pass(account, server, receiver, monkeypatch):  # type: ignore[no-untyped-def]
    from simplane.events import dispatcher

    sink = active_webhook(account, server, receiver)
    subscribe(account, sink, ALL_CONNECTION_TYPES)
    monkeypatch.setattr(server.runtime.settings, "events_batch_size", 5)
    monkeypatch.setattr(dispatcher, "BATCHES_PER_LEASE", 2)  # a pass sends two batches...
    monkeypatch.setattr(dispatcher, "TURN_SECONDS", 3600.0)  # ...however slow the machine

    def backlog() -> float:
        return metric(server, "simplane_event_backlog", sink_sid=sink.sid)

    with server.runtime.db.write() as db:
        outbox.publish_many(db, Fleet(account.sid, sims=5).rows(updates=1))  # 20
    assert dispatcher.dispatch(server.runtime)
    assert backlog() == 10  # a sink that is not failing, falling behind
    with server.runtime.db.write() as db:
        outbox.publish_many(db, Fleet(account.sid, sims=5).rows(updates=1))  # 20 more
    assert dispatcher.dispatch(server.runtime)
    assert backlog() == 20
    receiver.statuses = [503]
    dispatcher.dispatch(server.runtime)
    assert backlog() == 20
    server.clock.advance(timedelta(minutes=20))
    server.drain()  # caught up in full batches, the last pass sending nothing
    assert backlog() == 0
    assert metric(server, "simplane_event_deliveries_total", sink_sid=sink.sid,
                  outcome="delivered") == 40
