"""The console's Event Streams and Proxy pages, and the bound on live streams."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from simplane.console import views
from tests.console.conftest import Console
from tests.events.conftest import deliveries, subscribe, webhook_sink
from tests.proxy.conftest import ride
from tests.support import Receiver, Server, TestAccount


def test_event_streams_send_test_event(signed_in: Console, server: Server, account: TestAccount,
                                       receiver: Receiver) -> None:
    sink = webhook_sink(account, receiver.url + "/events")
    subscribe(account, sink, ["com.twilio.iot.supersim.connection.attachment.accepted"])
    page = signed_in.page
    page.get_by_role("link", name="Event Streams", exact=True).click()
    expect(page.get_by_role("table").first).to_contain_text("webhook")
    expect(page.get_by_role("table").nth(1)).to_contain_text(
        "com.twilio.iot.supersim.connection.attachment.accepted")
    page.get_by_role("button", name="Send test event to fleet events").click()
    expect(page.get_by_role("status")).to_contain_text(f"Test event queued for {sink.sid}")
    server.drain()
    [event] = deliveries(receiver.get())
    assert event["type"] == "com.twilio.eventstreams.test-event"
    signed_in.screenshot("event-streams")


def test_proxy_sessions_and_participants(signed_in: Console, account: TestAccount) -> None:
    ctx, rider, driver = ride(account)
    page = signed_in.page
    page.get_by_role("link", name="Proxy", exact=True).click()
    page.get_by_role("link", name="rides").click()
    page.get_by_role("link", name=ctx.fetch().sid).click()
    participants = page.get_by_role("region", name="Participants")
    expect(participants).to_contain_text(rider.identifier)
    expect(participants).to_contain_text(driver.identifier)
    expect(page.get_by_role("region", name="Interactions")).to_contain_text("No interactions yet")
    signed_in.screenshot("proxy")


def test_live_streams_are_bounded(server: Server, account: TestAccount,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Past LIVE_LIMIT streams at once a page is told to come back later (503), so that live
    pages cannot take the server's connections; a stream that is not signed in is refused."""
    assert httpx.get(f"{server.base_url}/console/live").status_code == 401
    with httpx.Client(base_url=server.base_url) as client:
        from tests.console.test_http import sign_in_form

        token = sign_in_form(client)
        client.post("/console/sign-in", data={"csrf": token, "username": account.sid,
                                              "password": account.token})
        monkeypatch.setattr(views, "LIVE_LIMIT", 0)
        refused = client.get("/console/live")
        assert refused.status_code == 503 and refused.headers["retry-after"] == "30"
        monkeypatch.setattr(views, "LIVE_LIMIT", 10)
        monkeypatch.setattr(views, "LIVE_SECONDS", 0.0)  # a stream that ends at once
        with client.stream("GET", "/console/live") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert b"".join(stream.iter_bytes()) == b"retry: 1000\n\n"
