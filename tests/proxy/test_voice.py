"""Calls through the simulated carrier, routed like messages: masked, recorded, reported."""

from __future__ import annotations

import json

from simplane.core.sids import new_sid
from tests.proxy.conftest import carrier_post, outbox, ride, signed


def test_a_call_is_masked_recorded_answered_and_ended(server, account, admin, receiver):
    session, rider, driver = ride(account, callback_url=f"{receiver.url}/cb")
    call_sid = new_sid("CA")
    r = carrier_post(server, account, "Calls", From=rider.identifier, To=rider.proxy_identifier,
                     CallSid=call_sid, CallStatus="ringing")
    assert r.status_code == 201, r.text
    routed = r.json()
    assert routed["to"] == driver.identifier and routed["from"] == driver.proxy_identifier
    i = session.interactions(routed["interaction_sid"]).fetch()
    assert i.type == "voice"
    assert (i.inbound_resource_sid, i.inbound_resource_type, i.inbound_resource_status) == (
        call_sid, "Call", "in-progress")
    assert i.outbound_resource_sid.startswith("CA") and i.outbound_resource_type == "Call"
    assert i.outbound_resource_status == "initiated"
    assert (i.inbound_participant_sid, i.outbound_participant_sid) == (rider.sid, driver.sid)
    assert session.fetch().status == "in-progress"

    server.drain()  # the carrier places the outbound leg; the driver answers
    assert session.interactions(i.sid).fetch().outbound_resource_status == "in-progress"
    [dialled] = outbox(server, admin, account, driver.identifier)
    assert dialled["kind"] == "call" and dialled["sid"] == i.outbound_resource_sid
    assert dialled["from"] == driver.proxy_identifier != rider.identifier
    first, answered = receiver.get(), receiver.get()
    assert first.value("outboundResourceStatus") == "initiated"
    assert answered.value("outboundResourceStatus") == "in-progress"
    assert answered.value("interactionType") == "voice" and signed(account, answered)

    server.clock.advance(42)
    r = carrier_post(server, account, f"Calls/{call_sid}", CallStatus="completed",
                     CallDuration="42")
    assert r.status_code == 200, r.text
    done = session.interactions(i.sid).fetch()
    assert (done.inbound_resource_status, done.outbound_resource_status) == ("completed",
                                                                             "completed")
    assert json.loads(done.data) == {"duration": "42"} and done.date_updated == server.clock.now()
    server.drain()
    ended = receiver.get()
    assert ended.value("inboundResourceStatus") == "completed" and signed(account, ended)


def test_calls_both_ways_and_either_leg_ends_the_call(server, account, admin):
    session, rider, driver = ride(account)
    a = carrier_post(server, account, "Calls", From=rider.identifier,
                     To=rider.proxy_identifier).json()
    b = carrier_post(server, account, "Calls", From=driver.identifier,
                     To=driver.proxy_identifier).json()
    assert (b["to"], b["from"]) == (rider.identifier, rider.proxy_identifier)
    assert a["inbound_resource_sid"].startswith("CA")  # the carrier gave no CallSid
    server.drain()
    # The rider's phone shows the driver's call from the rider's proxy number, never the driver's.
    [to_rider] = outbox(server, admin, account, rider.identifier)
    assert to_rider["from"] == rider.proxy_identifier and to_rider["kind"] == "call"
    # The callee hangs up: both legs are over.
    r = carrier_post(server, account, f"Calls/{a['outbound_resource_sid']}",
                     CallStatus="completed")
    assert r.json()["inbound_resource_status"] == "completed"
    # A caller who gives up before the carrier placed the call cancels the outbound leg.
    c = carrier_post(server, account, "Calls", From=rider.identifier,
                     To=rider.proxy_identifier).json()
    r = carrier_post(server, account, f"Calls/{c['inbound_resource_sid']}", CallStatus="canceled")
    assert r.json()["outbound_resource_status"] == "canceled"
    server.drain()
    assert session.interactions(c["interaction_sid"]).fetch().outbound_resource_status == \
        "canceled"
    assert len(session.interactions.list()) == 3


def test_session_mode_decides_what_it_carries(server, account):
    session, rider, _ = ride(account, mode="message-only")
    r = carrier_post(server, account, "Calls", From=rider.identifier, To=rider.proxy_identifier)
    assert r.status_code == 400 and r.json()["code"] == 80911
    assert carrier_post(server, account, "Messages", From=rider.identifier,
                        To=rider.proxy_identifier, Body="ok").status_code == 201
    assert [i.type for i in session.interactions.list()] == ["message"]
    session.update(status="closed")

    voice = account.client.proxy.v1.services(session.fetch().service_sid).sessions.create(
        mode="voice-only",
        participants=[{"Identifier": "+14155550133"}, {"Identifier": "+14155550144"}])
    caller = voice.participants.list()[0]
    r = carrier_post(server, account, "Messages", From=caller.identifier,
                     To=caller.proxy_identifier, Body="text?")
    assert r.status_code == 400 and r.json()["code"] == 80912
    assert carrier_post(server, account, "Calls", From=caller.identifier,
                        To=caller.proxy_identifier).status_code == 201
    assert [i.type for i in voice.interactions.list()] == ["voice"]


def test_call_input_errors(server, account, receiver):
    session, rider, _ = ride(account, out_of_session_callback_url=f"{receiver.url}/oos")
    r = carrier_post(server, account, "Calls", From=rider.identifier)
    assert r.status_code == 400 and "To" in r.json()["message"]
    r = carrier_post(server, account, "Calls", From=rider.identifier, To=rider.proxy_identifier,
                     CallSid="SM123")
    assert r.status_code == 400 and "CallSid" in r.json()["message"]
    r = carrier_post(server, account, "Calls", From=rider.identifier, To=rider.proxy_identifier,
                     CallStatus="completed")
    assert r.status_code == 400 and "CallStatus" in r.json()["message"]
    call = carrier_post(server, account, "Calls", From=rider.identifier,
                        To=rider.proxy_identifier).json()
    r = carrier_post(server, account, f"Calls/{call['inbound_resource_sid']}", CallStatus="done")
    assert r.status_code == 400 and "CallStatus" in r.json()["message"]
    r = carrier_post(server, account, f"Calls/{call['inbound_resource_sid']}",
                     CallStatus="completed", CallDuration="a while")
    assert r.status_code == 400 and "CallDuration" in r.json()["message"]
    r = carrier_post(server, account, f"Calls/{new_sid('CA')}", CallStatus="completed")
    assert r.status_code == 404 and r.json()["code"] == 20404
    other = server.new_account()
    r = carrier_post(server, other, f"Calls/{call['inbound_resource_sid']}",
                     CallStatus="completed")
    assert r.status_code == 404  # another account's call is not there for it
    assert session.interactions(call["interaction_sid"]).fetch().inbound_resource_status == \
        "in-progress"
    # A stranger's call goes to the out-of-session callback, as Twilio's voice webhook would.
    stranger = new_sid("CA")
    r = carrier_post(server, account, "Calls", From="+14155550199", To=rider.proxy_identifier,
                     CallSid=stranger)
    assert r.status_code == 404 and r.json()["code"] == 80905
    oos = receiver.get()
    assert oos.value("CallSid") == stranger and oos.value("From") == "+14155550199"
    assert oos.value("interactionType") == "voice"


def test_a_call_restarts_the_ttl(server, account):
    session, rider, _ = ride(account)  # ttl 600
    server.clock.advance(500)
    carrier_post(server, account, "Calls", From=rider.identifier, To=rider.proxy_identifier)
    server.clock.advance(500)
    server.drain()
    assert session.fetch().status == "in-progress"  # 500 s since the call
    server.clock.advance(100)
    server.drain()
    closed = session.fetch()
    assert (closed.status, closed.closed_reason) == ("closed", "expired")
    r = carrier_post(server, account, "Calls", From=rider.identifier, To=rider.proxy_identifier)
    assert r.status_code == 404 and r.json()["code"] == 80905


def test_nothing_reaches_a_participant_removed_before_delivery(server, account, admin):
    session, rider, driver = ride(account)
    call = carrier_post(server, account, "Calls", From=rider.identifier,
                        To=rider.proxy_identifier).json()
    session.participants(driver.sid).delete()
    server.drain()
    i = session.interactions(call["interaction_sid"]).fetch()
    assert i.outbound_resource_status == "failed"
    assert outbox(server, admin, account, driver.identifier) == []


def test_a_replayed_pending_status_does_not_place_the_call_again(server, account, admin):
    session, rider, driver = ride(account)
    call = carrier_post(server, account, "Calls", From=rider.identifier,
                        To=rider.proxy_identifier).json()
    server.drain()
    # The carrier replays the call's whole status sequence, `queued`/`initiated` included.
    for status in ("queued", "initiated"):
        for leg in ("outbound_resource_sid", "inbound_resource_sid"):
            r = carrier_post(server, account, f"Calls/{call[leg]}", CallStatus=status)
            assert r.status_code == 200, r.text
            assert (r.json()["inbound_resource_status"], r.json()["outbound_resource_status"]) \
                == ("in-progress", "in-progress")
    server.drain()
    assert [d["sid"] for d in outbox(server, admin, account, driver.identifier)] == [
        call["outbound_resource_sid"]]  # placed once
    # Later traffic is still delivered.
    r = carrier_post(server, account, "Messages", From=rider.identifier,
                     To=rider.proxy_identifier, Body="are you there?")
    assert r.status_code == 201, r.text
    server.drain()
    i = session.interactions(r.json()["interaction_sid"]).fetch()
    assert i.outbound_resource_status == "delivered"
    assert outbox(server, admin, account, driver.identifier)[0]["body"] == "are you there?"


def test_an_outbound_leg_reports_no_progress_before_it_is_placed(server, account, admin):
    session, rider, driver = ride(account)
    call = carrier_post(server, account, "Calls", From=rider.identifier,
                        To=rider.proxy_identifier).json()
    outbound = call["outbound_resource_sid"]
    for status in ("ringing", "in-progress", "completed"):
        r = carrier_post(server, account, f"Calls/{outbound}", CallStatus=status)
        assert r.status_code == 409 and r.json()["code"] == 80608, r.text
        assert outbound in r.json()["message"] and "CallStatus" in r.json()["message"]
    i = session.interactions(call["interaction_sid"]).fetch()
    assert (i.inbound_resource_status, i.outbound_resource_status) == ("in-progress",
                                                                       "initiated")
    server.drain()  # still placed, once
    assert [d["sid"] for d in outbox(server, admin, account, driver.identifier)] == [outbound]
    r = carrier_post(server, account, f"Calls/{outbound}", CallStatus="completed")
    assert r.status_code == 200, r.text
    assert r.json()["outbound_resource_status"] == "completed"


def test_a_late_status_never_moves_a_leg_back(server, account, receiver):
    session, rider, _ = ride(account, callback_url=f"{receiver.url}/cb")
    call = carrier_post(server, account, "Calls", From=rider.identifier,
                        To=rider.proxy_identifier).json()
    server.drain()  # the outbound leg is placed and answered
    inbound, outbound = call["inbound_resource_sid"], call["outbound_resource_sid"]

    def statuses() -> tuple[str, str]:
        i = session.interactions(call["interaction_sid"]).fetch()
        return i.inbound_resource_status, i.outbound_resource_status

    # The outbound leg's `ringing` reaches the server after it was answered.
    r = carrier_post(server, account, f"Calls/{outbound}", CallStatus="ringing")
    assert r.status_code == 200, r.text
    assert statuses() == ("in-progress", "in-progress")
    r = carrier_post(server, account, f"Calls/{outbound}", CallStatus="completed",
                     CallDuration="42")
    assert r.status_code == 200, r.text
    assert statuses() == ("completed", "completed")
    server.drain()
    while not receiver.requests.empty():
        receiver.requests.get()
    # Every status the call went through, and another final one, reported late on either leg.
    for status in ("ringing", "in-progress", "initiated", "queued", "failed", "no-answer",
                   "busy", "canceled"):
        for leg in (inbound, outbound):
            r = carrier_post(server, account, f"Calls/{leg}", CallStatus=status)
            assert r.status_code == 200, r.text
            assert (r.json()["inbound_resource_status"],
                    r.json()["outbound_resource_status"]) == ("completed", "completed")
    assert statuses() == ("completed", "completed")
    assert json.loads(session.interactions(call["interaction_sid"]).fetch().data) == {
        "duration": "42"}
    server.drain()
    assert receiver.requests.empty()  # nothing changed, so callback_url hears nothing

