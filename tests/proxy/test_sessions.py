from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.proxy.conftest import own, raw
from tests.support import raises

SESSION_FIELDS = {
    "sid", "service_sid", "account_sid", "date_started", "date_ended", "date_last_interaction",
    "date_expiry", "unique_name", "status", "closed_reason", "ttl", "mode", "date_created",
    "date_updated", "url", "links",
}


def _pool(account, service, *numbers):  # type: ignore[no-untyped-def]
    for sid in own(account, *numbers):
        account.client.proxy.v1.services(service.sid).phone_numbers.create(sid=sid)


def test_create_defaults_and_every_field(server, account, service):
    sessions = account.client.proxy.v1.services(service.sid).sessions
    s = sessions.create()
    assert s.sid.startswith("KC") and len(s.sid) == 34
    assert (s.service_sid, s.account_sid) == (service.sid, account.sid)
    assert s.status == "open" and s.mode == "voice-and-message" and s.ttl == 0
    assert s.unique_name is None and s.date_expiry is None and s.date_ended is None
    assert s.closed_reason is None and s.date_last_interaction is None
    assert s.date_started == s.date_created == server.clock.now()
    assert s.links == {"interactions": f"{s.url}/Interactions",
                       "participants": f"{s.url}/Participants"}
    assert set(raw(account, s.url)) == SESSION_FIELDS


def test_create_with_parameters_and_fetch_by_unique_name(server, account, service):
    _pool(account, service, "+14155550100")
    sessions = account.client.proxy.v1.services(service.sid).sessions
    expiry = server.clock.now() + timedelta(days=2)
    s = sessions.create(unique_name="order-1234", date_expiry=expiry, ttl=600,
                        mode="message-only", status="in-progress",
                        participants=[{"Identifier": "+14155550111", "FriendlyName": "Alice"},
                                      {"Identifier": "+14155550122"}])
    assert (s.unique_name, s.ttl, s.mode, s.status) == ("order-1234", 600, "message-only",
                                                         "in-progress")
    assert s.date_expiry == expiry
    fetched = sessions("order-1234").fetch()
    assert fetched.sid == s.sid
    parts = sessions(s.sid).participants.list()
    assert [(p.identifier, p.friendly_name, p.proxy_identifier) for p in parts] == [
        ("+14155550111", "Alice", "+14155550100"), ("+14155550122", None, "+14155550100")]
    with raises(80603, 409):
        sessions.create(unique_name="order-1234")


def test_ttl_defaults_to_the_services_default_ttl(account):
    proxy = account.client.proxy.v1
    svc = proxy.services.create(unique_name="ttl", default_ttl=300)
    assert proxy.services(svc.sid).sessions.create().ttl == 300
    assert proxy.services(svc.sid).sessions.create(ttl=0).ttl == 0


def test_list_and_delete_cascades(account, service):
    _pool(account, service, "+14155550100")
    sessions = account.client.proxy.v1.services(service.sid).sessions
    a = sessions.create(participants=[{"Identifier": "+14155550111"}])
    b = sessions.create()
    assert [s.sid for s in sessions.list()] == [a.sid, b.sid]
    p = sessions(a.sid).participants.list()[0]
    sessions(a.sid).participants(p.sid).message_interactions.create(body="hi")
    assert sessions(a.sid).delete() is True
    assert [s.sid for s in sessions.list()] == [b.sid]
    with raises(20404, 404):
        sessions(a.sid).participants(p.sid).fetch()
    number = account.client.proxy.v1.services(service.sid).phone_numbers.list()[0]
    assert number.in_use == 0


def test_close_and_reopen(server, account, service):
    sessions = account.client.proxy.v1.services(service.sid).sessions
    s = sessions.create()
    server.clock.advance(30)
    closed = sessions(s.sid).update(status="closed")
    assert closed.status == "closed" and closed.closed_reason == "api"
    assert closed.date_ended == server.clock.now()
    with raises(80607, 400):
        sessions(s.sid).update(ttl=60)
    with raises(80607, 400):
        sessions(s.sid).update(status="closed")
    reopened = sessions(s.sid).update(status="in-progress")
    assert reopened.status == "in-progress"
    assert reopened.date_ended is None and reopened.closed_reason is None
    with raises(80608, 400):
        sessions(s.sid).update(status="open")
    with raises(80608, 400):
        sessions(sessions.create().sid).update(status="failed")


def test_unknown_sessions_404(account, service):
    sessions = account.client.proxy.v1.services(service.sid).sessions
    with raises(20404, 404):
        sessions("KC" + "0" * 32).fetch()
    with raises(20404, 404):
        sessions("no such name").update(status="closed")


def test_ttl_expiry_closes_by_the_clock_and_interactions_extend_it(server, account, service):
    _pool(account, service, "+14155550100")
    sessions = account.client.proxy.v1.services(service.sid).sessions
    s = sessions.create(ttl=600, participants=[{"Identifier": "+14155550111"},
                                               {"Identifier": "+14155550122"}])
    forever = sessions.create()
    p = sessions(s.sid).participants.list()[0]
    server.clock.advance(500)
    server.drain()
    assert sessions(s.sid).fetch().status == "open"
    sessions(s.sid).participants(p.sid).message_interactions.create(body="on my way")
    touched = sessions(s.sid).fetch()
    assert touched.status == "in-progress"
    assert touched.date_last_interaction == server.clock.now()
    server.clock.advance(500)  # 1000s after create, 500s after the interaction
    server.drain()
    assert sessions(s.sid).fetch().status == "in-progress"
    server.clock.advance(100)
    server.drain()
    done = sessions(s.sid).fetch()
    assert done.status == "closed" and done.closed_reason == "expired"
    assert done.date_ended == server.clock.now()
    assert sessions(forever.sid).fetch().status == "open"
    with raises(80607, 400):
        sessions(s.sid).participants(p.sid).message_interactions.create(body="late")


def test_date_expiry_overrides_ttl(server, account, service):
    sessions = account.client.proxy.v1.services(service.sid).sessions
    s = sessions.create(ttl=60, date_expiry=server.clock.now() + timedelta(hours=1))
    server.clock.advance(120)
    server.drain()
    assert sessions(s.sid).fetch().status == "open"
    server.clock.advance(3600)
    server.drain()
    assert sessions(s.sid).fetch().status == "closed"
    with raises(80601, 400):
        sessions.create(date_expiry=datetime(2020, 1, 1, tzinfo=UTC))


def test_update_can_extend_expiry(server, account, service):
    sessions = account.client.proxy.v1.services(service.sid).sessions
    s = sessions.create(ttl=60)
    server.clock.advance(50)
    later = server.clock.now() + timedelta(hours=1)
    assert sessions(s.sid).update(date_expiry=later).date_expiry == later
    server.clock.advance(600)
    server.drain()
    assert sessions(s.sid).fetch().status == "open"


def test_shortening_the_ttl_below_the_elapsed_time_closes_on_the_next_run(server, account,
                                                                          service):
    sessions = account.client.proxy.v1.services(service.sid).sessions
    s = sessions.create(ttl=600)
    server.clock.advance(100)
    assert sessions(s.sid).update(ttl=50).ttl == 50
    server.drain()
    assert sessions(s.sid).fetch().status == "closed"
    # Re-opening restarts the ttl ...
    assert sessions(s.sid).update(status="in-progress").status == "in-progress"
    server.clock.advance(49)
    server.drain()
    assert sessions(s.sid).fetch().status == "in-progress"
    server.clock.advance(1)
    server.drain()
    assert sessions(s.sid).fetch().status == "closed"


def test_reopening_past_its_date_expiry_needs_a_new_one(server, account, service):
    sessions = account.client.proxy.v1.services(service.sid).sessions
    s = sessions.create(date_expiry=server.clock.now() + timedelta(minutes=5))
    server.clock.advance(600)
    server.drain()
    assert sessions(s.sid).fetch().status == "closed"
    with raises(80601, 400):
        sessions(s.sid).update(status="in-progress")
    later = server.clock.now() + timedelta(hours=1)
    reopened = sessions(s.sid).update(status="in-progress", date_expiry=later)
    assert reopened.status == "in-progress" and reopened.date_expiry == later
