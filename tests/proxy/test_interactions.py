from __future__ import annotations

import json

from tests.proxy.conftest import own, raw
from tests.support import raises

INTERACTION_FIELDS = {
    "sid", "session_sid", "service_sid", "account_sid", "data", "type",
    "inbound_participant_sid", "inbound_resource_sid", "inbound_resource_status",
    "inbound_resource_type", "inbound_resource_url", "outbound_participant_sid",
    "outbound_resource_sid", "outbound_resource_status", "outbound_resource_type",
    "outbound_resource_url", "date_created", "date_updated", "url",
}


def _session(account, mode="voice-and-message"):  # type: ignore[no-untyped-def]
    proxy = account.client.proxy.v1
    svc = proxy.services.create(unique_name="chat")
    own(account, "+14155550100")
    proxy.services(svc.sid).phone_numbers.create(phone_number="+14155550100")
    session = proxy.services(svc.sid).sessions.create(
        mode=mode, participants=[{"Identifier": "+14155550111"}, {"Identifier": "+14155550122"}])
    ctx = proxy.services(svc.sid).sessions(session.sid)
    return ctx, ctx.participants.list()


def test_message_interaction_create_fetch_list(server, account):
    session, (alice, bob) = _session(account)
    mi = session.participants(bob.sid).message_interactions.create(body="Your driver is here")
    assert mi.sid.startswith("KI") and len(mi.sid) == 34
    assert mi.participant_sid == bob.sid and mi.session_sid == session._solution["sid"]
    assert mi.type == "message"
    assert json.loads(mi.data) == {"body": "Your driver is here"}
    assert mi.inbound_participant_sid is None and mi.inbound_resource_sid is None
    assert mi.outbound_participant_sid == bob.sid
    assert mi.outbound_resource_type == "Message"
    assert mi.outbound_resource_sid.startswith("SM")
    body = raw(account, mi.url)
    assert set(body) == INTERACTION_FIELDS | {"participant_sid"}
    server.drain()
    fetched = session.participants(bob.sid).message_interactions(mi.sid).fetch()
    assert fetched.outbound_resource_status == "delivered"
    assert [x.sid for x in session.participants(bob.sid).message_interactions.list()] == [mi.sid]
    assert session.participants(alice.sid).message_interactions.list() == []
    with raises(20404, 404):
        session.participants(alice.sid).message_interactions(mi.sid).fetch()
    # It is an interaction of the session too.
    i = session.interactions(mi.sid).fetch()
    assert i.sid == mi.sid and i.outbound_participant_sid == bob.sid
    assert set(raw(account, i.url)) == INTERACTION_FIELDS
    assert session.fetch().status == "in-progress"


def test_interactions_list_newest_first_and_delete(account):
    session, (alice, bob) = _session(account)
    one = session.participants(bob.sid).message_interactions.create(body="one")
    two = session.participants(alice.sid).message_interactions.create(body="two")
    assert [i.sid for i in session.interactions.list()] == [two.sid, one.sid]
    assert session.interactions(one.sid).delete() is True
    assert [i.sid for i in session.interactions.list()] == [two.sid]
    with raises(20404, 404):
        session.interactions(one.sid).fetch()


def test_message_interaction_rules(account):
    session, (alice, _bob) = _session(account, mode="voice-only")
    with raises(80601, 400):
        session.participants(alice.sid).message_interactions.create(body="hi")
    session2, (carol, _dave) = _session_named(account)
    with raises(80601, 400):
        session2.participants(carol.sid).message_interactions.create()
    assert json.loads(session2.participants(carol.sid).message_interactions.create(
        media_url=["https://example.com/a.png"]).data) == {
        "body": "", "media_urls": ["https://example.com/a.png"]}


def _session_named(account):  # type: ignore[no-untyped-def]
    proxy = account.client.proxy.v1
    svc = proxy.services.create(unique_name="chat2")
    own(account, "+14155550101")
    proxy.services(svc.sid).phone_numbers.create(phone_number="+14155550101")
    session = proxy.services(svc.sid).sessions.create(
        participants=[{"Identifier": "+14155550111"}, {"Identifier": "+14155550122"}])
    ctx = proxy.services(svc.sid).sessions(session.sid)
    return ctx, ctx.participants.list()
