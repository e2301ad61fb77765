"""callback_url hears of every status change: interactions as their legs progress, Sessions as
they close (by update or on expiry); each request signed as Twilio signs them."""

from __future__ import annotations

from tests.proxy.conftest import carrier_post, ride, signed


def _all(receiver) -> list:  # type: ignore[no-untyped-def]
    found = []
    while not receiver.requests.empty():
        found.append(receiver.requests.get())
    return found


def test_session_closed_on_expiry_is_reported(server, account, receiver):
    session, _rider, _ = ride(account, callback_url=f"{receiver.url}/cb")
    server.clock.advance(599)
    server.drain()
    assert _all(receiver) == []
    server.clock.advance(1)
    server.drain()
    [closed] = _all(receiver)
    assert closed.value("sessionSid") == session.fetch().sid and signed(account, closed)
    assert (closed.value("sessionStatus"), closed.value("sessionClosedReason")) == (
        "closed", "expired")
    assert closed.value("sessionDateEnded") == server.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert session.fetch().status == "closed"
    server.drain()
    assert _all(receiver) == []  # closed once, reported once


def test_session_closed_by_update_is_reported_once(server, account, receiver):
    session, _, _ = ride(account, callback_url=f"{receiver.url}/cb")
    session.update(status="closed")
    server.drain()
    [closed] = _all(receiver)
    assert (closed.value("sessionStatus"), closed.value("sessionClosedReason")) == (
        "closed", "api")
    assert signed(account, closed)
    session.update(status="in-progress")
    server.drain()
    assert _all(receiver) == []  # re-opening is not a close


def test_message_delivery_is_reported(server, account, receiver):
    session, rider, driver = ride(account, callback_url=f"{receiver.url}/cb")
    sent = session.participants(driver.sid).message_interactions.create(body="here")
    server.drain()
    queued, delivered = _all(receiver)
    assert queued.value("interactionSid") == delivered.value("interactionSid") == sent.sid
    assert queued.value("outboundResourceStatus") == "queued"
    assert delivered.value("outboundResourceStatus") == "delivered"
    assert delivered.value("interactionDateUpdated") and signed(account, delivered)
    assert sent.outbound_participant_sid == driver.sid
    r = carrier_post(server, account, "Messages", From=rider.identifier,
                     To=rider.proxy_identifier, Body="coming")
    server.drain()
    assert [c.value("outboundResourceStatus") for c in _all(receiver)] == ["queued", "delivered"]
    assert session.interactions(r.json()["interaction_sid"]).fetch().outbound_resource_status \
        == "delivered"
