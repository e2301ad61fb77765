from __future__ import annotations

import base64
import json
import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta

import boto3
import pytest
from moto.server import ThreadedMotoServer

from simplane.events import outbox
from tests.events.conftest import ALL_CONNECTION_TYPES, Fleet, deliveries, drain_received, subscribe
from tests.support import Receiver, free_port

ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    moto.start()
    yield f"http://127.0.0.1:{port}"
    moto.stop()


@pytest.fixture
def kinesis(moto_url, server, monkeypatch):  # type: ignore[no-untyped-def]
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(server.runtime.settings, "kinesis_endpoint_url", moto_url)
    return boto3.client("kinesis", region_name="us-east-1", endpoint_url=moto_url)


def publish(server, rows) -> list[str]:  # type: ignore[no-untyped-def]
    with server.runtime.db.write() as db:
        return outbox.publish_many(db, rows)


def read_stream(kinesis, name: str) -> list[dict]:  # type: ignore[no-untyped-def]
    records = []
    for shard in kinesis.list_shards(StreamName=name)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            records += [{**r, "ShardId": shard["ShardId"]} for r in page["Records"]]
            iterator = page.get("NextShardIterator") if page["Records"] else None
    return records


def test_kinesis_one_record_per_event_partitioned_by_sim(  # type: ignore[no-untyped-def]
        events, account, server, kinesis):
    name = f"fleet-{account.sid[-8:]}"
    kinesis.create_stream(StreamName=name, ShardCount=2)
    config = {"arn": f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/{name}",
              "role_arn": f"arn:aws:iam::{ACCOUNT}:role/EventStreams", "external_id": "ext-1234"}
    sink = events.sinks.create(description="kinesis", sink_type="kinesis",
                               sink_configuration=config)
    assert sink.status == "initialized"
    events.sinks(sink.sid).sink_test.create()
    server.drain()
    [test_record] = read_stream(kinesis, name)
    test_event = json.loads(test_record["Data"])
    assert test_event["type"] == "com.twilio.eventstreams.test-event"
    test_id = json.loads(test_event["data"])["test_id"]  # data is a JSON-encoded string
    events.sinks(sink.sid).sink_validate.create(test_id=test_id)
    subscribe(account, sink, ALL_CONNECTION_TYPES)
    rows = Fleet(account.sid, sims=8).rows(updates=2)
    ids = publish(server, rows)
    server.drain()
    records = [r for r in read_stream(kinesis, name)
               if json.loads(r["Data"])["type"] != "com.twilio.eventstreams.test-event"]
    assert sorted(json.loads(r["Data"])["id"] for r in records) == sorted(ids)
    by_id = {r["data"]["event_sid"]: r for r in rows}
    per_sim = defaultdict(list)
    shards = defaultdict(set)
    for record in records:  # each shard's records, in the shard's order
        event = json.loads(record["Data"])
        assert isinstance(event["data"], str)
        data = json.loads(event["data"])
        assert data == by_id[event["id"]]["data"]
        assert record["PartitionKey"] == data["sim_sid"]
        assert event["dataschema"].endswith("SuperSim.ConnectionEvent/2")
        per_sim[data["sim_sid"]].append(event["id"])
        shards[data["sim_sid"]].add(record["ShardId"])
    assert all(len(s) == 1 for s in shards.values())  # one SIM, one shard
    for sim, got in per_sim.items():
        assert got == [r["data"]["event_sid"] for r in rows if r["subject"] == sim]


def test_kinesis_missing_stream_is_retried(events, account, server, kinesis):  # type: ignore[no-untyped-def]
    name = f"late-{account.sid[-8:]}"
    config = {"arn": f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/{name}",
              "role_arn": f"arn:aws:iam::{ACCOUNT}:role/EventStreams", "external_id": "ext-1234"}
    sink = events.sinks.create(description="kinesis", sink_type="kinesis",
                               sink_configuration=config)
    events.sinks(sink.sid).sink_test.create()
    server.drain()  # the stream does not exist yet
    assert events.sinks(sink.sid).fetch().status == "validating"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    server.clock.advance(timedelta(minutes=20))
    server.drain()
    [record] = read_stream(kinesis, name)
    assert json.loads(record["Data"])["type"] == "com.twilio.eventstreams.test-event"


def test_segment_track_calls_with_the_write_key(events, account, server, monkeypatch):  # type: ignore[no-untyped-def]
    segment = Receiver()
    try:
        monkeypatch.setattr(server.runtime.settings, "segment_url", segment.url)
        sink = events.sinks.create(description="segment", sink_type="segment",
                                   sink_configuration={"write_key": "WRITE-KEY-123"})
        events.sinks(sink.sid).sink_test.create()
        server.drain()
        test_call = json.loads(segment.get().body)["batch"][0]
        assert test_call["event"] == "com.twilio.eventstreams.test-event"
        events.sinks(sink.sid).sink_validate.create(test_id=test_call["properties"]["test_id"])
        subscribe(account, sink, ALL_CONNECTION_TYPES)
        rows = Fleet(account.sid, sims=3).rows(updates=1)
        ids = publish(server, rows)
        segment.statuses = [500]
        server.drain()
        server.clock.advance(timedelta(minutes=20))
        server.drain()
        requests = drain_received(segment)
        assert len(requests) == 2  # refused once, then accepted
        request = requests[-1]
        assert request.path == "/v1/batch"
        user, _, password = base64.b64decode(
            request.headers["Authorization"].split()[1]).decode().partition(":")
        assert (user, password) == ("WRITE-KEY-123", "")
        body = json.loads(request.body)
        calls = body["batch"]
        assert [c["messageId"] for c in calls] == ids
        by_id = {r["data"]["event_sid"]: r for r in rows}
        for call in calls:
            row = by_id[call["messageId"]]
            assert call["type"] == "track" and call["event"] == row["type"]
            assert call["properties"] == row["data"]
            assert call["anonymousId"] == row["subject"]
            assert call["timestamp"].endswith(".000Z")
        assert body["sentAt"]
    finally:
        segment.close()


def test_webhook_credentials_in_url_become_basic_auth(events, account, server, receiver):  # type: ignore[no-untyped-def]
    from twilio.request_validator import RequestValidator

    url = receiver.url.replace("http://", "http://fleet:s3cret@") + "/hook"
    sink = events.sinks.create(description="auth", sink_type="webhook",
                               sink_configuration={"destination": url, "method": "POST"})
    events.sinks(sink.sid).sink_test.create()
    server.drain()
    request = receiver.get()
    assert base64.b64decode(request.headers["Authorization"].split()[1]) == b"fleet:s3cret"
    assert RequestValidator(account.token).validate(
        request.url, request.body.decode(), request.headers["X-Twilio-Signature"])
    assert deliveries(request)[0]["type"] == "com.twilio.eventstreams.test-event"


def test_simulated_fleet_to_webhook_kinesis_and_segment(  # type: ignore[no-untyped-def]
        events, account, server, kinesis, receiver, monkeypatch):
    """End to end: the network simulator's Super SIM fleet, through ingest and the outbox, to
    the three kinds of sink at once; every event produced reaches each, in order per SIM."""
    from sqlalchemy import select

    from simplane.events import catalogue
    from simplane.events.models import OutboxEvent
    from simplane.network.simulator import simulate
    from tests.events.conftest import activate, webhook_sink

    segment = Receiver()
    try:
        monkeypatch.setattr(server.runtime.settings, "segment_url", segment.url)
        hook = webhook_sink(account, receiver.url + "/fleet")
        activate(account, server, receiver, hook)
        name = f"sim-{account.sid[-8:]}"
        kinesis.create_stream(StreamName=name, ShardCount=2)
        stream = events.sinks.create(description="kinesis", sink_type="kinesis", sink_configuration={
            "arn": f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/{name}",
            "role_arn": f"arn:aws:iam::{ACCOUNT}:role/EventStreams", "external_id": "ext-1234"})
        seg = events.sinks.create(description="segment", sink_type="segment",
                                  sink_configuration={"write_key": "WRITE-KEY"})
        for sink in (stream, seg):
            events.sinks(sink.sid).sink_test.create()
        server.drain()
        [kinesis_test] = read_stream(kinesis, name)
        events.sinks(stream.sid).sink_validate.create(
            test_id=json.loads(json.loads(kinesis_test["Data"])["data"])["test_id"])
        events.sinks(seg.sid).sink_validate.create(
            test_id=json.loads(segment.get().body)["batch"][0]["properties"]["test_id"])
        for sink in (hook, stream, seg):
            subscribe(account, sink, ALL_CONNECTION_TYPES)

        result = simulate(server.runtime, account.sid, sims=15, hours=1, product="supersim")
        assert len(result.sims) == 15
        with server.runtime.db.read() as db:
            produced = db.execute(select(OutboxEvent.id, OutboxEvent.subject, OutboxEvent.type,
                                         OutboxEvent.data)
                                  .where(OutboxEvent.account_sid == account.sid)
                                  .order_by(OutboxEvent.pk)).all()
        assert len(produced) > 15
        for row in produced:
            catalogue.validate(row.type, json.loads(row.data))
        server.drain()

        ids = [r.id for r in produced]
        per_sim = defaultdict(list)
        for r in produced:
            per_sim[r.subject].append(r.id)
        webhook_ids = [e["id"] for r in drain_received(receiver) for e in deliveries(r)]
        assert webhook_ids == ids
        segment_ids = [c["messageId"] for r in drain_received(segment)
                       for c in json.loads(r.body)["batch"]]
        assert segment_ids == ids
        kinesis_events = [json.loads(r["Data"]) for r in read_stream(kinesis, name)]
        kinesis_by_sim = defaultdict(list)
        for e in kinesis_events:
            if e["type"] != catalogue.TEST_EVENT:
                kinesis_by_sim[json.loads(e["data"])["sim_sid"]].append(e["id"])
        assert kinesis_by_sim == per_sim
    finally:
        segment.close()


def test_kinesis_partial_acceptance_keeps_order_and_loses_nothing(  # type: ignore[no-untyped-def]
        events, account, server, kinesis, monkeypatch):
    """PutRecords may accept some records of a batch and refuse others (throttling): the
    accepted prefix counts as delivered, the rest is sent again, in order."""
    from simplane.events.sinks import kinesis as kinesis_sink

    name = f"throttled-{account.sid[-8:]}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    config = {"arn": f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/{name}",
              "role_arn": f"arn:aws:iam::{ACCOUNT}:role/EventStreams", "external_id": "ext-1234"}
    sink = events.sinks.create(description="kinesis", sink_type="kinesis",
                               sink_configuration=config)
    events.sinks(sink.sid).sink_test.create()
    server.drain()
    [test_record] = read_stream(kinesis, name)
    events.sinks(sink.sid).sink_validate.create(
        test_id=json.loads(json.loads(test_record["Data"])["data"])["test_id"])
    subscribe(account, sink, ALL_CONNECTION_TYPES)

    real_get = kinesis_sink.CLIENTS.get
    throttled = []

    class Throttling:
        """The real (moto) stream, except that the first PutRecords takes only 3 records."""

        def __init__(self, client) -> None:  # type: ignore[no-untyped-def]
            self.client = client

        def put_records(self, Records, **stream):  # type: ignore[no-untyped-def]
            if throttled:
                return self.client.put_records(Records=Records, **stream)
            throttled.append(len(Records))
            reply = self.client.put_records(Records=Records[:3], **stream)
            refused = {"ErrorCode": "ProvisionedThroughputExceededException",
                       "ErrorMessage": "Rate exceeded for shard"}
            return {"FailedRecordCount": len(Records) - 3,
                    "Records": reply["Records"] + [refused] * (len(Records) - 3)}

    monkeypatch.setattr(kinesis_sink.CLIENTS, "get",
                        lambda settings, config: Throttling(real_get(settings, config)))
    ids = publish(server, Fleet(account.sid, sims=4).rows(updates=1))
    server.drain()
    assert throttled == [len(ids)]
    got = [json.loads(r["Data"])["id"] for r in read_stream(kinesis, name)][1:]
    assert got == ids[:3]  # the rest waits for the retry
    server.clock.advance(timedelta(minutes=20))
    server.drain()
    got = [json.loads(r["Data"])["id"] for r in read_stream(kinesis, name)][1:]
    assert got == ids  # each once, in order
