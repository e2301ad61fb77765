"""The out-of-session callback's answer is acted on, as Twilio documents: auto-create JSON
makes a Session and routes the traffic through it; TwiML is played to the sender."""

from __future__ import annotations

import json

from tests.proxy.conftest import carrier_post, outbox, own, signed

POOL = "+14155550100"
AGENT = "+14155550122"
CUSTOMER = "+14155550199"


def _service(account, receiver, **kwargs):  # type: ignore[no-untyped-def]
    proxy = account.client.proxy.v1
    svc = proxy.services.create(unique_name="directory",
                                out_of_session_callback_url=f"{receiver.url}/oos", **kwargs)
    own(account, POOL, "+14155550101")
    proxy.services(svc.sid).phone_numbers.create(phone_number=POOL, is_reserved=True)
    proxy.services(svc.sid).phone_numbers.create(phone_number="+14155550101")
    return proxy.services(svc.sid)


def test_auto_create_json_opens_a_session_and_routes_the_message(server, account, admin,
                                                                  receiver):
    svc = _service(account, receiver)
    receiver.answers = [(200, "application/json", json.dumps({
        "uniqueName": "listing-42", "ttl": 3600, "mode": "voice-and-message",
        "participantIdentifier": AGENT, "participantFriendlyName": "seller"}))]
    r = carrier_post(server, account, "Messages", From=CUSTOMER, To=POOL, Body="still for sale?")
    assert r.status_code == 201, r.text
    asked = receiver.get()
    assert asked.path == "/oos" and signed(account, asked)
    assert (asked.value("From"), asked.value("To"), asked.value("Body")) == (CUSTOMER, POOL,
                                                                             "still for sale?")
    session = svc.sessions("listing-42").fetch()
    assert (session.ttl, session.mode, session.status) == (3600, "voice-and-message",
                                                           "in-progress")
    customer, seller = svc.sessions(session.sid).participants.list()
    assert (customer.identifier, customer.proxy_identifier) == (CUSTOMER, POOL)
    assert (seller.identifier, seller.friendly_name) == (AGENT, "seller")
    assert seller.proxy_identifier == "+14155550101"  # the reserved number is not picked
    [i] = svc.sessions(session.sid).interactions.list()
    assert (i.inbound_participant_sid, i.outbound_participant_sid) == (customer.sid, seller.sid)
    server.drain()
    [received] = outbox(server, admin, account, AGENT)
    assert (received["from"], received["body"]) == ("+14155550101", "still for sale?")
    # The next message finds the session open: no callback this time.
    assert carrier_post(server, account, "Messages", From=CUSTOMER, To=POOL,
                        Body="hello?").status_code == 201
    assert receiver.requests.empty()
    assert len(svc.sessions(session.sid).interactions.list()) == 2


def test_auto_create_for_a_call(server, account, receiver):
    svc = _service(account, receiver)
    receiver.answers = [(200, "application/json; charset=utf-8",
                        json.dumps({"participantIdentifier": AGENT, "mode": "voice-only"}))]
    r = carrier_post(server, account, "Calls", From=CUSTOMER, To=POOL)
    assert r.status_code == 201, r.text
    assert r.json()["to"] == AGENT
    [session] = svc.sessions.list()
    assert session.mode == "voice-only" and session.unique_name is None


def test_twiml_is_played_to_the_sender(server, account, admin, receiver):
    svc = _service(account, receiver)
    twiml = "<Response><Message>This listing has closed.</Message></Response>"
    receiver.answers = [(200, "application/xml", twiml)]
    r = carrier_post(server, account, "Messages", From=CUSTOMER, To=POOL, Body="hi")
    assert r.status_code == 200, r.text
    assert r.json() == {"messages": [{"sid": r.json()["messages"][0]["sid"], "from": POOL, "to": CUSTOMER, "body": "This listing has closed."}]}
    [reply] = outbox(server, admin, account, CUSTOMER)
    assert (reply["from"], reply["body"], reply["kind"]) == (POOL, "This listing has closed.",
                                                             "message")
    assert svc.sessions.list() == []


def test_failed_or_unusable_answers(server, account, receiver):
    svc = _service(account, receiver)
    receiver.answers = [(500, "", "")]
    r = carrier_post(server, account, "Messages", From=CUSTOMER, To=POOL, Body="hi")
    assert r.status_code == 502 and r.json()["code"] == 80913
    receiver.answers = [(200, "text/plain", "ok")]
    r = carrier_post(server, account, "Messages", From=CUSTOMER, To=POOL, Body="hi")
    assert r.status_code == 404 and r.json()["code"] == 80905
    receiver.answers = [(200, "application/json", json.dumps({"uniqueName": "x"}))]
    r = carrier_post(server, account, "Messages", From=CUSTOMER, To=POOL, Body="hi")
    assert r.status_code == 404 and "participantIdentifier" in r.json()["message"]
    receiver.answers = [(200, "application/json", json.dumps(
        {"participantIdentifier": AGENT, "mode": "fax-only"}))]
    r = carrier_post(server, account, "Messages", From=CUSTOMER, To=POOL, Body="hi")
    assert r.status_code == 400 and r.json()["code"] == 80601
    receiver.answers = [(200, "application/json", json.dumps(
        {"participantIdentifier": AGENT, "participantProxyIdentifier": "+14155559999"}))]
    r = carrier_post(server, account, "Messages", From=CUSTOMER, To=POOL, Body="hi")
    assert r.status_code == 400 and r.json()["code"] == 80402
    for bad in ({"uniqueName": "a\x00b"}, {"participantFriendlyName": "a\x00b"}):
        receiver.answers = [(200, "application/json",
                             json.dumps({"participantIdentifier": AGENT, **bad}))]
        r = carrier_post(server, account, "Messages", From=CUSTOMER, To=POOL, Body="hi")
        assert r.status_code == 400 and r.json()["code"] == 80601, r.text
    assert svc.sessions.list() == []  # nothing half-made
