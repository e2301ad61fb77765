"""The producer API: events commit or roll back with the caller's transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from simplane.events import outbox
from simplane.events.models import OutboxEvent
from tests.events.conftest import ALL_CONNECTION_TYPES, Fleet, active_webhook, deliveries, subscribe


def test_publish_commits_with_the_caller_and_rolls_back_with_it(account, server, receiver):  # type: ignore[no-untyped-def]
    sink = active_webhook(account, server, receiver)
    subscribe(account, sink, ALL_CONNECTION_TYPES)
    [kept, dropped] = [Fleet(account.sid, sims=1).rows(updates=0)[0] for _ in range(2)]
    with pytest.raises(RuntimeError), server.runtime.db.write() as db:
        outbox.publish(db, account.sid, dropped["type"], dropped["data"],
                       subject=dropped["subject"], time=dropped["time"])
        raise RuntimeError("the state change failed")
    with server.runtime.db.write() as db:
        event_id = outbox.publish(db, account.sid, kept["type"], kept["data"],
                                  subject=kept["subject"], time=datetime(2026, 3, 1, 12, 0, 0,
                                                                         250000))
    assert event_id == kept["data"]["event_sid"]  # the data's event_sid is the CloudEvents id
    server.drain()
    [event] = deliveries(receiver.get())
    assert event["id"] == event_id
    assert event["time"] == "2026-03-01T12:00:00.250Z"  # a naive datetime is UTC
    assert receiver.requests.empty()


def test_ids_given_or_generated(account, server):  # type: ignore[no-untyped-def]
    with server.runtime.db.write() as db:
        given = outbox.publish(db, account.sid, "com.example.thing", {"n": 1}, id="custom-1")
        generated = outbox.publish_many(db, [
            {"account_sid": account.sid, "type": "com.example.thing", "data": {"n": 2}},
            {"account_sid": account.sid, "type": "com.example.thing", "data": {"n": 3},
             "time": datetime(2026, 1, 2, tzinfo=UTC)}])
        assert outbox.publish_many(db, []) == []
    assert given == "custom-1"
    assert all(i.startswith("EZ") and len(i) == 34 for i in generated)
    assert len(set(generated)) == 2
    with server.runtime.db.read() as db:
        rows = db.execute(select(OutboxEvent.id, OutboxEvent.subject, OutboxEvent.time)
                          .where(OutboxEvent.account_sid == account.sid)
                          .order_by(OutboxEvent.pk)).all()
    assert [r.id for r in rows] == [given, *generated]
    assert rows[0].subject is None and rows[2].time == "2026-01-02T00:00:00.000Z"
