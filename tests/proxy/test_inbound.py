from __future__ import annotations

import json

import httpx
from twilio.request_validator import RequestValidator

from tests.proxy.conftest import own


def _setup(account, **service_kwargs):  # type: ignore[no-untyped-def]
    proxy = account.client.proxy.v1
    svc = proxy.services.create(unique_name="inbound", **service_kwargs)
    own(account, "+14155550100")
    proxy.services(svc.sid).phone_numbers.create(phone_number="+14155550100")
    session = proxy.services(svc.sid).sessions.create(
        ttl=600, participants=[{"Identifier": "+14155550111"}, {"Identifier": "+14155550122"}])
    ctx = proxy.services(svc.sid).sessions(session.sid)
    return ctx, ctx.participants.list()


def _send(server, account, sender, to, body):  # type: ignore[no-untyped-def]
    return httpx.post(f"{server.base_url}/proxy/operator/Messages",
                      data={"From": sender, "To": to, "Body": body},
                      auth=(account.sid, account.token))


def test_inbound_message_is_proxied_recorded_and_reported(server, account, receiver):
    session, (alice, bob) = _setup(account, callback_url=f"{receiver.url}/cb")
    server.clock.advance(300)
    response = _send(server, account, "+14155550111", "+14155550100", "hello bob")
    assert response.status_code == 201, response.text
    routed = response.json()
    assert routed["to"] == "+14155550122" and routed["from"] == bob.proxy_identifier
    i = session.interactions(routed["interaction_sid"]).fetch()
    assert (i.inbound_participant_sid, i.outbound_participant_sid) == (alice.sid, bob.sid)
    assert (i.inbound_resource_type, i.inbound_resource_status) == ("Message", "delivered")
    assert i.outbound_resource_type == "Message" and json.loads(i.data) == {"body": "hello bob"}
    s = session.fetch()
    assert s.status == "in-progress" and s.date_last_interaction == server.clock.now()
    server.drain()
    cb = receiver.get()
    assert cb.path == "/cb"
    assert cb.value("interactionSid") == i.sid and cb.value("inboundParticipantSid") == alice.sid
    assert RequestValidator(account.token).validate(
        cb.url, {k: v[0] for k, v in cb.form.items()}, cb.headers["X-Twilio-Signature"])


def test_out_of_session_and_unknown_numbers(server, account, receiver):
    session, _ = _setup(account, out_of_session_callback_url=f"{receiver.url}/oos")
    response = _send(server, account, "+14155550199", "+14155550100", "who is this")
    assert response.status_code == 404 and response.json()["code"] == 80905
    server.drain()
    cb = receiver.get()
    assert cb.path == "/oos" and cb.value("From") == "+14155550199"
    session.update(status="closed")
    assert _send(server, account, "+14155550111", "+14155550100", "x").json()["code"] == 80905
    assert _send(server, account, "+14155550111", "+14155559999", "x").status_code == 404
    assert httpx.post(f"{server.base_url}/proxy/operator/Messages",
                      data={"From": "+1", "To": "+1", "Body": ""}).status_code == 401
    assert session.interactions.list() == []


def test_intercept_callback_403_blocks(server, account, receiver):
    session, _ = _setup(account, intercept_callback_url=f"{receiver.url}/intercept")
    receiver.statuses = [403]
    blocked = _send(server, account, "+14155550111", "+14155550100", "spam")
    assert blocked.status_code == 403 and blocked.json()["code"] == 80909
    asked = receiver.get()
    assert asked.value("Body") == "spam" and asked.path == "/intercept"
    assert RequestValidator(account.token).validate(
        asked.url, {k: v[0] for k, v in asked.form.items()}, asked.headers["X-Twilio-Signature"])
    assert session.interactions.list() == []
    receiver.statuses = [500]
    assert _send(server, account, "+14155550111", "+14155550100", "ok").status_code == 201
    assert len(session.interactions.list()) == 1


def test_callbacks_and_interaction_share_the_sid_made_up_for_the_carrier(server, account,
                                                                        receiver):
    session, _ = _setup(account, intercept_callback_url=f"{receiver.url}/intercept")
    routed = _send(server, account, "+14155550111", "+14155550100", "no MessageSid").json()
    assert routed["inbound_resource_sid"].startswith("SM")
    assert receiver.get().value("MessageSid") == routed["inbound_resource_sid"]
    call = httpx.post(f"{server.base_url}/proxy/operator/Calls",
                      data={"From": "+14155550111", "To": "+14155550100"},
                      auth=(account.sid, account.token)).json()
    assert call["inbound_resource_sid"].startswith("CA")
    assert receiver.get().value("CallSid") == call["inbound_resource_sid"]
    assert session.interactions(call["interaction_sid"]).fetch().inbound_resource_sid == \
        call["inbound_resource_sid"]


def test_a_nul_character_is_refused_not_stored(server, account, admin):
    session, (alice, _) = _setup(account)
    for field in ("From", "Body"):
        data = {"From": alice.identifier, "To": alice.proxy_identifier, "Body": "hi"}
        data[field] += "\x00"
        response = httpx.post(f"{server.base_url}/proxy/operator/Messages", data=data,
                              auth=(account.sid, account.token))
        assert response.status_code == 400, response.text
        assert field in response.json()["message"]
    response = httpx.get(f"{server.base_url}/proxy/operator/Outbox", params={"To": "+1\x00"},
                         auth=(admin.sid, admin.token))
    assert response.status_code == 400 and "To" in response.json()["message"]
    assert session.interactions.list() == []
