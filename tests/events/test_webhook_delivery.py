from __future__ import annotations

import json
from collections import defaultdict
from datetime import timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from simplane.events import outbox
from simplane.events.models import EventSink
from tests.events.conftest import (
    ALL_CONNECTION_TYPES,
    CONNECTION,
    Fleet,
    activate,
    active_webhook,
    deliveries,
    drain_received,
    posting_a_test_during_the_next_send,
    subscribe,
    webhook_sink,
)
from tests.support import Receiver

UPDATED = CONNECTION + "data-session.updated"


def publish(server, rows) -> list[str]:  # type: ignore[no-untyped-def]
    with server.runtime.db.write() as db:
        return outbox.publish_many(db, rows)


def received_events(receiver) -> list[dict]:  # type: ignore[no-untyped-def]
    return [e for request in drain_received(receiver) for e in deliveries(request)]


def test_fleet_events_reach_a_webhook_signed_batched_and_in_order(  # type: ignore[no-untyped-def]
        events, account, server, receiver):
    sink = active_webhook(account, server, receiver, path="/events?team=iot")
    subscribe(account, sink, ALL_CONNECTION_TYPES)
    fleet = Fleet(account.sid, sims=30)
    rows = fleet.rows(updates=3)  # 30 SIMs x 6 events = 180
    ids = publish(server, rows)
    server.drain()
    requests = drain_received(receiver)
    assert len(requests) == 2  # batched: 100 per request by default
    validator = RequestValidator(account.token)
    got = []
    for request in requests:
        assert request.method == "POST"
        assert request.headers["Content-Type"] == "application/json"
        query = parse_qs(urlsplit(request.url).query)
        assert query["team"] == ["iot"] and "bodySHA256" in query
        assert validator.validate(request.url, request.body.decode(),
                                  request.headers["X-Twilio-Signature"])
        assert not validator.validate(request.url, request.body.decode() + " ",
                                      request.headers["X-Twilio-Signature"])
        got += deliveries(request)
    assert [e["id"] for e in got] == ids
    by_id = {r["data"]["event_sid"]: r for r in rows}
    for event in got:
        row = by_id[event["id"]]
        assert event["type"] == row["type"]
        assert event["source"] == f"/v1/SuperSim/ConnectionEvents/{event['id']}"
        assert event["dataschema"] == "https://events-schemas.twilio.com/SuperSim.ConnectionEvent/2"
        assert event["datacontenttype"] == "application/json"
        assert event["data"] == row["data"]
        assert event["time"] == row["time"].strftime("%Y-%m-%dT%H:%M:%S.000Z")
    per_sim = defaultdict(list)
    for event in got:
        per_sim[event["data"]["sim_sid"]].append(event["type"].rsplit(".", 2)[-2:])
    for kinds in per_sim.values():
        assert [k[-1] for k in kinds] == ["accepted", "started", "updated", "updated",
                                          "updated", "ended"]


def test_only_subscribed_types_from_subscription_time_and_only_active_sinks(  # type: ignore[no-untyped-def]
        events, account, server, receiver):
    sink = active_webhook(account, server, receiver)
    fleet = Fleet(account.sid, sims=2)
    publish(server, fleet.rows(updates=1))  # before any subscription: not owed
    sub = subscribe(account, sink, [UPDATED], version=1)
    rows = fleet.rows(updates=1)
    publish(server, rows)
    other = server.new_account()  # another account's events never reach this sink
    publish(server, Fleet(other.sid, sims=2).rows(updates=1))
    server.drain()
    got = received_events(receiver)
    assert [e["id"] for e in got] == [r["data"]["event_sid"] for r in rows if r["type"] == UPDATED]
    # schema version 1: no cumulative counters, and the v1 dataschema
    assert all("data_session_data_total" not in e["data"] for e in got)
    assert {e["dataschema"] for e in got} == {
        "https://events-schemas.twilio.com/SuperSim.ConnectionEvent/1"}
    # A type added later is delivered from then on.
    events.subscriptions(sub.sid).subscribed_events.create(type=CONNECTION + "data-session.ended")
    later = fleet.rows(updates=0)
    publish(server, later)
    server.drain()
    assert [e["id"] for e in received_events(receiver)] == [
        r["data"]["event_sid"] for r in later if r["type"].endswith("ended")]


def test_batching_can_be_turned_off(events, account, server, receiver):  # type: ignore[no-untyped-def]
    sink = active_webhook(account, server, receiver, batch_events=False)
    subscribe(account, sink, ALL_CONNECTION_TYPES)
    ids = publish(server, Fleet(account.sid, sims=2).rows(updates=0))
    server.drain()
    requests = drain_received(receiver)
    assert [len(json.loads(r.body)) for r in requests] == [1] * len(ids)
    assert [deliveries(r)[0]["id"] for r in requests] == ids


def test_receiver_that_fails_times_out_then_recovers_gets_everything(  # type: ignore[no-untyped-def]
        events, account, server, receiver, monkeypatch):
    sink = active_webhook(account, server, receiver)
    subscribe(account, sink, ALL_CONNECTION_TYPES)
    monkeypatch.setattr(server.runtime.settings, "callback_timeout", 0.3)
    ids = publish(server, Fleet(account.sid, sims=5).rows(updates=1))
    receiver.statuses = [500, 502]
    server.drain()
    assert [r.body for r in drain_received(receiver)] and receiver.statuses == [502]
    server.drain()  # backing off: nothing more until the clock moves
    assert receiver.requests.empty()
    server.clock.advance(timedelta(minutes=20))
    server.drain()
    assert receiver.statuses == []
    assert len(drain_received(receiver)) == 1  # the 502
    receiver.delay = 1.0  # longer than the webhook timeout
    server.clock.advance(timedelta(minutes=20))
    server.drain()
    timed_out = receiver.get()  # it did arrive, but too late: sent again
    receiver.delay = 0
    server.clock.advance(timedelta(minutes=20))
    server.drain()
    got = [e["id"] for r in drain_received(receiver) for e in deliveries(r)]
    assert [e["id"] for e in deliveries(timed_out)] == ids
    assert got == ids  # everything, in order, after the failures
    assert events.sinks(sink.sid).fetch().status == "active"


def test_refused_connections_are_retried(events, account, server, receiver):  # type: ignore[no-untyped-def]
    sink = active_webhook(account, server, receiver)
    subscribe(account, sink, ALL_CONNECTION_TYPES)
    receiver.close()  # nobody listens any more
    ids = publish(server, Fleet(account.sid, sims=1).rows(updates=0))
    server.drain()
    with server.runtime.db.read() as db:
        assert db.scalar(select(EventSink.last_error).where(
            EventSink.sid == sink.sid)) == "no answer"
    back = Receiver(receiver.port)  # it comes back on the same port
    try:
        server.clock.advance(timedelta(minutes=20))
        server.drain()
        assert [e["id"] for r in drain_received(back) for e in deliveries(r)] == ids
    finally:
        back.close()


def test_retry_after_is_honoured(events, account, server, receiver):  # type: ignore[no-untyped-def]
    sink = active_webhook(account, server, receiver)
    subscribe(account, sink, ALL_CONNECTION_TYPES)
    ids = publish(server, Fleet(account.sid, sims=1).rows(updates=0))
    receiver.statuses = [429]
    receiver.headers = {"Retry-After": "3600"}
    server.drain()
    assert len(drain_received(receiver)) == 1
    receiver.headers = {}
    server.clock.advance(timedelta(seconds=3590))
    server.drain()
    assert receiver.requests.empty()
    server.clock.advance(timedelta(seconds=10))
    server.drain()
    assert [e["id"] for e in received_events(receiver)] == ids


def test_retry_after_as_an_http_date_is_honoured(events, account, server, receiver):  # type: ignore[no-untyped-def]
    sink = active_webhook(account, server, receiver)
    subscribe(account, sink, ALL_CONNECTION_TYPES)
    ids = publish(server, Fleet(account.sid, sims=1).rows(updates=0))
    receiver.statuses = [503]
    receiver.headers = {"Retry-After": format_datetime(server.clock.now() + timedelta(hours=2),
                                                       usegmt=True)}
    server.drain()
    assert len(drain_received(receiver)) == 1
    receiver.headers = {}
    server.clock.advance(timedelta(seconds=7190))  # longer than any backoff of a first retry
    server.drain()
    assert receiver.requests.empty()
    server.clock.advance(timedelta(seconds=10))
    server.drain()
    assert [e["id"] for e in received_events(receiver)] == ids


def test_failed_after_the_retry_horizon_backlog_kept(events, account, server, receiver):  # type: ignore[no-untyped-def]
    sink = active_webhook(account, server, receiver)
    subscribe(account, sink, ALL_CONNECTION_TYPES)
    first = publish(server, Fleet(account.sid, sims=2).rows(updates=0))
    receiver.statuses = [503] * 1000
    for _ in range(30):  # retried with backoff for four hours
        server.drain()
        server.clock.advance(timedelta(minutes=10))
    server.drain()
    assert events.sinks(sink.sid).fetch().status == "failed"
    assert len(drain_received(receiver)) > 5
    more = publish(server, Fleet(account.sid, sims=1).rows(updates=0))
    receiver.statuses = []
    server.clock.advance(timedelta(hours=1))
    server.drain()
    assert receiver.requests.empty()  # a failed sink gets nothing...
    test_event = activate(account, server, receiver, sink)
    assert test_event["type"] == "com.twilio.eventstreams.test-event"
    assert events.sinks(sink.sid).fetch().status == "active"
    server.drain()  # ...until it is validated again: then its whole backlog, in order
    assert [e["id"] for e in received_events(receiver)] == first + more


def test_postgresql_late_commit_is_not_skipped(events, account, server, receiver):  # type: ignore[no-untyped-def]
    """A transaction that began publishing first but commits last: the cursor must not move
    past its events while it runs. A long transaction in another database holds nothing up."""
    if not server.runtime.settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite's writers commit one after the other")
    import psycopg

    from tests.conftest import POSTGRES_URL

    sink = active_webhook(account, server, receiver)
    subscribe(account, sink, ALL_CONNECTION_TYPES)
    fleet = Fleet(account.sid, sims=1)
    first, second = fleet.rows(updates=0), fleet.rows(updates=0)
    with psycopg.connect(POSTGRES_URL) as elsewhere:  # another database, a transaction left open
        elsewhere.execute("SELECT pg_current_xact_id()")
        slow = server.runtime.db.write()
        db = slow.__enter__()
        try:
            early = outbox.publish_many(db, first)  # takes its xid first, commits last
            late = publish(server, second)
            server.drain()
            assert receiver.requests.empty()  # the later commit waits for the earlier one
        finally:
            slow.__exit__(None, None, None)
        server.drain()
        assert [e["id"] for e in received_events(receiver)] == early + late


def test_a_huge_retry_after_waits_the_retry_horizon_at_most(  # type: ignore[no-untyped-def]
        events, account, server, receiver):
    sink = active_webhook(account, server, receiver)
    subscribe(account, sink, ALL_CONNECTION_TYPES)
    ids = publish(server, Fleet(account.sid, sims=1).rows(updates=0))
    receiver.statuses = [429]
    receiver.headers = {"Retry-After": "999999999999"}  # past the last datetime
    server.drain()
    assert len(drain_received(receiver)) == 1
    receiver.headers = {}
    with server.runtime.db.read() as db:
        assert db.scalar(select(EventSink.last_error).where(
            EventSink.sid == sink.sid)) == "HTTP 429"
    server.drain()
    assert receiver.requests.empty()  # the retry is scheduled, not attempted at every tick
    server.clock.advance(timedelta(seconds=server.runtime.settings.events_retry_horizon))
    server.drain()
    assert [e["id"] for e in received_events(receiver)] == ids


def test_testing_an_active_failing_sink_does_not_restart_its_retry_horizon(  # type: ignore[no-untyped-def]
        events, account, server, receiver):
    sink = active_webhook(account, server, receiver)
    subscribe(account, sink, ALL_CONNECTION_TYPES)
    publish(server, Fleet(account.sid, sims=1).rows(updates=0))
    receiver.statuses = [503] * 1000
    for _ in range(18):  # failing for three hours
        server.drain()
        server.clock.advance(timedelta(minutes=10))
    assert events.sinks(sink.sid).sink_test.create().result == "submitted"
    assert events.sinks(sink.sid).fetch().status == "active"
    for _ in range(9):  # the test event fails too, past four hours of failures
        server.drain()
        server.clock.advance(timedelta(minutes=10))
    server.drain()
    assert events.sinks(sink.sid).fetch().status == "failed"


def test_a_test_posted_while_a_batch_fails_past_the_retry_horizon_is_delivered(  # type: ignore[no-untyped-def]
        events, account, server, receiver, monkeypatch):
    sink = active_webhook(account, server, receiver)
    subscribe(account, sink, ALL_CONNECTION_TYPES)
    ids = publish(server, Fleet(account.sid, sims=1).rows(updates=0))
    receiver.statuses = [503]
    server.drain()
    assert [e["id"] for e in received_events(receiver)] == ids
    server.clock.advance(timedelta(seconds=server.runtime.settings.events_retry_horizon))
    posted = posting_a_test_during_the_next_send(monkeypatch, events, sink)
    receiver.statuses = [503]  # the retry fails past the horizon, the test is posted meanwhile
    server.drain()
    assert posted
    failed, test, *backlog = [deliveries(r) for r in drain_received(receiver)]
    assert [e["id"] for e in failed] == ids
    [test_event] = test  # sent, not dropped with the batch that failed
    assert test_event["type"] == "com.twilio.eventstreams.test-event"
    assert events.sinks(sink.sid).fetch().status == "active"  # it went through...
    assert [e["id"] for batch in backlog for e in batch] == ids  # ...and then the backlog
    events.sinks(sink.sid).sink_validate.create(test_id=test_event["data"]["test_id"])


def test_a_test_posted_while_the_previous_one_fails_past_the_retry_horizon_is_delivered(  # type: ignore[no-untyped-def]
        events, account, server, receiver, monkeypatch):
    sink = webhook_sink(account, receiver.url)
    events.sinks(sink.sid).sink_test.create()
    receiver.statuses = [503]
    server.drain()
    [first] = deliveries(receiver.get())
    server.clock.advance(timedelta(seconds=server.runtime.settings.events_retry_horizon))
    posted = posting_a_test_during_the_next_send(monkeypatch, events, sink)
    receiver.statuses = [503]
    server.drain()
    server.drain()  # the worker's next round: a failed test event did not keep it busy
    assert posted
    [again], [second] = [deliveries(r) for r in drain_received(receiver)]
    assert again["data"]["test_id"] == first["data"]["test_id"]  # failed past the horizon
    assert second["data"]["test_id"] != first["data"]["test_id"]  # the new one is sent
    assert events.sinks(sink.sid).fetch().status == "active"  # not failed
    events.sinks(sink.sid).sink_validate.create(test_id=second["data"]["test_id"])
    assert events.sinks(sink.sid).fetch().status == "active"


def test_a_fragment_in_the_destination_is_not_signed(events, account, server, receiver):  # type: ignore[no-untyped-def]
    """The signature covers the URL requested, and a fragment is never part of a request."""
    sink = webhook_sink(account, receiver.url + "/events?team=iot#fleet")
    events.sinks(sink.sid).sink_test.create()
    server.drain()
    request = receiver.get()
    assert "#" not in request.url and "team=iot" in request.url
    assert RequestValidator(account.token).validate(
        request.url, request.body.decode(), request.headers["X-Twilio-Signature"])
