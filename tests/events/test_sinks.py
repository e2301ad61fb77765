from __future__ import annotations

import httpx

from tests.events.conftest import (
    activate,
    deliveries,
    posting_a_test_during_the_next_send,
    subscribe,
    webhook_sink,
)
from tests.support import raises


def test_create_webhook_sink_starts_active(events, account, receiver):  # type: ignore[no-untyped-def]
    sink = webhook_sink(account, receiver.url)
    assert sink.sid.startswith("DG") and len(sink.sid) == 34
    assert sink.status == "active"  # as Twilio's: no Test and Validate needed before subscribing
    assert sink.sink_type == "webhook"
    assert sink.sink_configuration == {"destination": receiver.url, "method": "POST",
                                       "batch_events": True}
    assert sink.description == "fleet events"
    assert sink.links == {"sink_test": sink.url + "/Test", "sink_validate": sink.url + "/Validate"}
    fetched = events.sinks(sink.sid).fetch()
    assert fetched.status == "active" and fetched.date_created == sink.date_created
    subscription = subscribe(account, sink, [
        "com.twilio.iot.supersim.connection.attachment.accepted"])
    assert subscription.sink_sid == sink.sid


KINESIS = {"arn": "arn:aws:kinesis:us-east-1:111111111111:stream/test",
           "role_arn": "arn:aws:iam::111111111111:role/Role", "external_id": "1234567890"}


def kinesis_sink(events):  # type: ignore[no-untyped-def]
    return events.sinks.create(description="k", sink_type="kinesis", sink_configuration=KINESIS)


def test_kinesis_and_segment_sinks(events):  # type: ignore[no-untyped-def]
    kinesis = kinesis_sink(events)
    assert kinesis.sink_configuration == KINESIS and kinesis.status == "initialized"
    segment = events.sinks.create(description="s", sink_type="segment",
                                  sink_configuration={"write_key": "MY_WRITEKEY"})
    assert segment.sink_configuration == {"write_key": "MY_WRITEKEY"}
    assert segment.status == "initialized"


def test_configurations_are_not_stored_in_clear(events, server):  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    segment = events.sinks.create(description="s", sink_type="segment",
                                  sink_configuration={"write_key": "SECRET-WRITE-KEY"})
    hook = events.sinks.create(description="h", sink_type="webhook", sink_configuration={
        "destination": "https://fleet:hunter2-password@example.com/events"})
    with server.runtime.db.read() as db:
        rows = db.execute(text("SELECT * FROM event_sinks WHERE sid IN (:a, :b)"),
                          {"a": segment.sid, "b": hook.sid}).all()
    assert len(rows) == 2
    stored = " ".join(str(value) for row in rows for value in row)
    assert "SECRET-WRITE-KEY" not in stored and "hunter2" not in stored
    assert events.sinks(segment.sid).fetch().sink_configuration == {
        "write_key": "SECRET-WRITE-KEY"}
    assert events.sinks(hook.sid).fetch().sink_configuration["destination"] == (
        "https://fleet:hunter2-password@example.com/events")


def test_bad_configuration_names_the_field(events, account):  # type: ignore[no-untyped-def]
    cases = [
        ("webhook", {"method": "POST"}, "'destination'"),
        ("webhook", {"destination": "ftp://x/y"}, "SinkConfiguration.destination"),
        ("webhook", {"destination": "http://x/y", "method": "PUT"}, "SinkConfiguration.method"),
        ("webhook", {"destination": "http://x/y", "batch_events": "yes"},
         "SinkConfiguration.batch_events"),
        ("webhook", {"destination": "http://x/y", "colour": "red"}, "'colour'"),
        ("kinesis", {"arn": "nope", "role_arn": "arn:aws:iam::1:role/R", "external_id": "12"},
         "SinkConfiguration.arn"),
        ("kinesis", {"arn": "arn:aws:kinesis:us-east-1:1:stream/s", "role_arn": "x",
                     "external_id": "12"}, "SinkConfiguration.role_arn"),
        ("kinesis", {"arn": "arn:aws:kinesis:us-east-1:1:stream/s",
                     "role_arn": "arn:aws:iam::1:role/R"}, "'external_id'"),
        ("segment", {}, "'write_key'"),
        ("segment", {"write_key": 5}, "SinkConfiguration.write_key"),
        ("email", {"to": "a@b.c"}, "SinkType"),
    ]
    for sink_type, config, named in cases:
        with raises(20001, 400) as check:
            events.sinks.create(description="bad", sink_type=sink_type, sink_configuration=config)
        assert named in check.error.msg, (named, check.error.msg)
    response = httpx.post(f"{account.server.base_url}/events/v1/Sinks",
                          data={"Description": "x", "SinkType": "webhook",
                                "SinkConfiguration": "{not json"},
                          auth=(account.sid, account.token))
    assert response.status_code == 400 and "SinkConfiguration" in response.json()["message"]
    with raises(20001, 400):
        events.sinks.create(description="x", sink_type="carrier-pigeon",
                            sink_configuration={"destination": "http://x"})
    assert events.sinks.list() == []  # nothing half-created


def test_test_then_validate(events, account, server, receiver):  # type: ignore[no-untyped-def]
    sink = webhook_sink(account, receiver.url + "/hook")
    assert events.sinks(sink.sid).sink_test.create().result == "submitted"
    assert events.sinks(sink.sid).fetch().status == "active"  # a webhook sink stays active
    server.drain()
    request = receiver.get()
    [event] = deliveries(request)
    assert event["type"] == "com.twilio.eventstreams.test-event"
    assert event["source"] == "Sink" and event["id"] == account.sid
    assert event["dataschema"] == "https://events-schemas.twilio.com/EventStreams.TestSink/1.json"
    with raises(20001, 400):
        events.sinks(sink.sid).sink_validate.create(test_id="b" * 36)
    result = events.sinks(sink.sid).sink_validate.create(test_id=event["data"]["test_id"])
    assert result.result == "valid"
    assert events.sinks(sink.sid).fetch().status == "active"


def test_only_the_latest_test_id_validates(events, account, server, receiver):  # type: ignore[no-untyped-def]
    sink = webhook_sink(account, receiver.url)
    with raises(20001, 400):  # no test yet
        events.sinks(sink.sid).sink_validate.create(test_id="x")
    events.sinks(sink.sid).sink_test.create()
    events.sinks(sink.sid).sink_test.create()
    server.drain()
    [first] = deliveries(receiver.get())
    assert receiver.requests.empty()  # one pending test, not two
    events.sinks(sink.sid).sink_test.create()
    server.drain()
    [second] = deliveries(receiver.get())
    assert first["data"]["test_id"] != second["data"]["test_id"]
    with raises(20001, 400):
        events.sinks(sink.sid).sink_validate.create(test_id=first["data"]["test_id"])
    events.sinks(sink.sid).sink_validate.create(test_id=second["data"]["test_id"])


def test_list_filters_update_delete(events, account, server, receiver):  # type: ignore[no-untyped-def]
    a = kinesis_sink(events)
    b = webhook_sink(account, receiver.url + "/b")
    activate(account, server, receiver, b)
    subscribe(account, b, ["com.twilio.iot.supersim.connection.attachment.accepted"])
    assert [s.sid for s in events.sinks.list(status="active")] == [b.sid]
    assert [s.sid for s in events.sinks.list(status="initialized")] == [a.sid]
    assert [s.sid for s in events.sinks.list(in_use=True)] == [b.sid]
    assert [s.sid for s in events.sinks.list(in_use=False)] == [a.sid]
    assert len(list(events.sinks.list(page_size=1))) == 2
    response = httpx.get(f"{server.base_url}/events/v1/Sinks?Status=sleeping",
                         auth=(account.sid, account.token))
    assert response.status_code == 400 and "Status" in response.json()["message"]
    updated = events.sinks(a.sid).update(description="renamed")
    assert updated.description == "renamed"
    with raises(20001, 400):
        events.sinks(a.sid).update(description="")
    with raises(20001, 409):  # in use by a subscription
        events.sinks(b.sid).delete()
    assert events.sinks(a.sid).delete() is True
    with raises(20404, 404):
        events.sinks(a.sid).fetch()


def test_accounts_never_see_each_others_sinks(events, account, server, receiver):  # type: ignore[no-untyped-def]
    sink = webhook_sink(account, receiver.url)
    other = server.new_account().client.events.v1
    with raises(20404, 404):
        other.sinks(sink.sid).fetch()
    with raises(20404, 404):
        other.sinks(sink.sid).sink_test.create()
    with raises(20404, 404):
        other.sinks(sink.sid).delete()
    assert other.sinks.list() == []
    response = httpx.get(f"{server.base_url}/events/v1/Sinks", auth=(account.sid, "wrong" * 8))
    assert response.status_code == 401 and response.json()["code"] == 20003


def test_a_test_posted_while_one_is_in_flight_is_sent_too(  # type: ignore[no-untyped-def]
        events, account, server, receiver, monkeypatch):
    sink = webhook_sink(account, receiver.url)
    # /Test again while the first test event is on its way
    posted = posting_a_test_during_the_next_send(monkeypatch, events, sink)
    events.sinks(sink.sid).sink_test.create()
    server.drain()
    [first] = deliveries(receiver.get())
    [second] = deliveries(receiver.get())  # the newer test_id is delivered as well
    assert receiver.requests.empty() and posted
    assert first["data"]["test_id"] != second["data"]["test_id"]
    with raises(20001, 400):
        events.sinks(sink.sid).sink_validate.create(test_id=first["data"]["test_id"])
    events.sinks(sink.sid).sink_validate.create(test_id=second["data"]["test_id"])
    assert events.sinks(sink.sid).fetch().status == "active"
