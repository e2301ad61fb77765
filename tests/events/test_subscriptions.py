from __future__ import annotations

import httpx
import pytest
from twilio.base.exceptions import TwilioException

from tests.events.conftest import (
    ALL_CONNECTION_TYPES,
    CONNECTION,
    active_webhook,
    subscribe,
)
from tests.support import raises

UPDATED = CONNECTION + "data-session.updated"
ENDED = CONNECTION + "data-session.ended"


def test_subscription_with_types_and_versions(events, account, server, receiver):  # type: ignore[no-untyped-def]
    sink = active_webhook(account, server, receiver)
    sub = events.subscriptions.create(
        description="usage", sink_sid=sink.sid,
        types=[{"type": UPDATED, "schema_version": 1}, {"type": ENDED}])
    assert sub.sid.startswith("DF") and sub.sink_sid == sink.sid
    assert sub.account_sid == account.sid and sub.description == "usage"
    assert sub.links["subscribed_events"] == sub.url + "/SubscribedEvents"
    types = {t.type: t for t in events.subscriptions(sub.sid).subscribed_events.list()}
    assert {k: t.schema_version for k, t in types.items()} == {UPDATED: 1, ENDED: 2}
    assert types[ENDED].subscription_sid == sub.sid and types[ENDED].account_sid == account.sid
    assert types[ENDED].url.endswith(f"/Subscriptions/{sub.sid}/SubscribedEvents/{ENDED}")
    assert events.subscriptions(sub.sid).fetch().sink_sid == sink.sid
    assert [s.sid for s in events.subscriptions.list(sink_sid=sink.sid)] == [sub.sid]
    assert events.subscriptions.list(sink_sid="DG" + "0" * 32) == []


def test_subscribed_events_create_update_delete(events, account, server, receiver):  # type: ignore[no-untyped-def]
    sink = active_webhook(account, server, receiver)
    sub = subscribe(account, sink, [UPDATED])
    se = events.subscriptions(sub.sid).subscribed_events
    added = se.create(type=ENDED, schema_version=1)
    assert (added.type, added.schema_version) == (ENDED, 1)
    again = se.create(type=ENDED)  # already there: unchanged
    assert again.schema_version == 1
    url = f"{server.base_url}/events/v1/Subscriptions/{sub.sid}/SubscribedEvents"
    auth = (account.sid, account.token)
    assert httpx.post(url, data={"Type": ENDED}, auth=auth).status_code == 200
    created = httpx.post(url, data={"Type": CONNECTION + "attachment.failed"}, auth=auth)
    assert created.status_code == 201 and created.json()["schema_version"] == 2
    assert se(CONNECTION + "attachment.failed").delete() is True
    assert se(ENDED).update(schema_version=2).schema_version == 2
    assert se(ENDED).fetch().schema_version == 2
    with raises(20001, 400) as check:
        se(ENDED).update(schema_version=7)
    assert "SchemaVersion" in check.error.msg
    with raises(20001, 400) as check:
        se.create(type="com.example.nothing")
    assert "Type" in check.error.msg
    assert se(ENDED).delete() is True
    with raises(20404, 404):
        se(ENDED).fetch()
    assert [t.type for t in se.list()] == [UPDATED]


def test_bad_subscriptions_are_refused_whole(events, account, server, receiver):  # type: ignore[no-untyped-def]
    inactive = events.sinks.create(description="k", sink_type="segment",
                                   sink_configuration={"write_key": "MY_WRITEKEY"})
    with raises(20001, 400) as check:
        subscribe(account, inactive, [UPDATED])
    assert "SinkSid" in check.error.msg and "active" in check.error.msg
    sink = active_webhook(account, server, receiver)
    for types in ([{"type": UPDATED}, {"type": "com.example.nope"}],
                  [{"type": UPDATED, "schema_version": 9}],
                  [{"type": UPDATED, "schema_version": "two"}],
                  [{"type": UPDATED}, {"type": UPDATED}],
                  [{"schema_version": 1}],
                  [{"type": "com.twilio.eventstreams.test-event"}]):
        with raises(20001, 400) as check:
            events.subscriptions.create(description="x", sink_sid=sink.sid, types=types)
        assert "Types" in check.error.msg
    with raises(20001, 400) as check:
        events.subscriptions.create(description="x", sink_sid="DG" + "0" * 32, types=[
            {"type": UPDATED}])
    assert "SinkSid" in check.error.msg
    response = httpx.post(f"{server.base_url}/events/v1/Subscriptions",
                          data={"Description": "x", "SinkSid": sink.sid},
                          auth=(account.sid, account.token))
    assert response.status_code == 400 and "Types" in response.json()["message"]
    assert events.subscriptions.list() == []


def test_update_and_delete_subscription(events, account, server, receiver):  # type: ignore[no-untyped-def]
    sink = active_webhook(account, server, receiver)
    sub = subscribe(account, sink, ALL_CONNECTION_TYPES)
    assert len(events.subscriptions(sub.sid).subscribed_events.list()) == 7
    assert events.subscriptions(sub.sid).update(description="renamed").description == "renamed"
    other = server.new_account().client.events.v1
    with raises(20404, 404):
        other.subscriptions(sub.sid).fetch()
    with pytest.raises(TwilioException, match="20404"):  # lists fail with a bare exception
        other.subscriptions(sub.sid).subscribed_events.list()
    with raises(20001, 400):  # another account's sink cannot be subscribed to
        other.subscriptions.create(description="x", sink_sid=sink.sid, types=[{"type": UPDATED}])
    assert events.subscriptions(sub.sid).delete() is True
    with raises(20404, 404):
        events.subscriptions(sub.sid).fetch()
    assert events.sinks(sink.sid).delete() is True  # no longer in use
