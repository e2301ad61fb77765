"""Callbacks that an inbound message waits for (intercept, out-of-session) hold none of the
threads that serve requests, and one account may have only so many of them awaited at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from simplane.core.callbacks import Waiting
from tests.proxy.conftest import carrier_post, own
from tests.support import Receiver

POOL = "+14155550100"
OTHER_POOL = "+14155550111"
THREADS = 40  # the request threads of the server (AnyIO's default thread limiter)
WAITS = THREADS + 5


@pytest.fixture
def elsewhere() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def cap(server) -> Iterator[Waiting]:  # type: ignore[no-untyped-def]
    """Room for more waiting callbacks than there are request threads, which wait until the
    test lets them answer (not the 5 s timeout)."""
    kept, timeout = server.runtime.waiting, server.runtime.settings.callback_timeout
    server.runtime.waiting = Waiting(WAITS)
    server.runtime.settings.callback_timeout = 120
    yield server.runtime.waiting
    server.runtime.waiting, server.runtime.settings.callback_timeout = kept, timeout


def test_waiting_callbacks_hold_no_request_thread_and_are_capped(
        server, account, receiver, elsewhere, cap):  # type: ignore[no-untyped-def]
    proxy = account.client.proxy.v1
    service = proxy.services.create(unique_name="slow",
                                    out_of_session_callback_url=f"{receiver.url}/oos")
    own(account, POOL)
    proxy.services(service.sid).phone_numbers.create(phone_number=POOL)
    other = server.new_account()
    theirs = other.client.proxy.v1.services.create(
        unique_name="quick", out_of_session_callback_url=f"{elsewhere.url}/oos")
    own(other, OTHER_POOL)
    other.client.proxy.v1.services(theirs.sid).phone_numbers.create(phone_number=OTHER_POOL)
    elsewhere.answers = [(200, "text/xml", "<Response><Message>open</Message></Response>")]
    receiver.gate = threading.Event()
    with ThreadPoolExecutor(WAITS) as pool:
        try:
            held = [pool.submit(  # waiting as long as the test holds them, not httpx's 5 s
                httpx.post, f"{server.base_url}/proxy/operator/Messages", timeout=120,
                auth=(account.sid, account.token),
                data={"From": f"+1415555{1000 + n}", "To": POOL, "Body": "hi"})
                for n in range(WAITS)]
            for _ in range(WAITS):  # every callback has reached the receiver and is held there
                receiver.get()
            # More callbacks awaited than the server has request threads: another account is
            # still served (before the change, it waited for the callbacks to answer).
            r = httpx.get(f"{server.base_url}/wireless/v1/Sims", auth=(other.sid, other.token),
                          timeout=30)
            assert r.status_code == 200, r.text
            # and the account is at its cap: one more is turned away at once, not queued
            r = carrier_post(server, account, "Messages", From="+14155552000", To=POOL,
                             Body="one more")
            assert r.status_code == 429 and r.json()["code"] == 20429, r.text
            assert "callbacks" in r.json()["message"]
            # while another account's callbacks are not counted against it
            r = carrier_post(server, other, "Messages", From="+14155552000", To=OTHER_POOL,
                             Body="hi")
            assert r.status_code == 200 and r.json()["messages"][0]["body"] == "open", r.text
            assert not any(f.done() for f in held)
        finally:
            receiver.gate.set()
        answers = [f.result() for f in held]
    # Answered 200 with no TwiML or JSON: nothing routes them (80905), as Twilio does.
    assert {(a.status_code, a.json()["code"]) for a in answers} == {(404, 80905)}
    receiver.gate = None
    receiver.answers = [(200, "text/xml", "<Response><Message>later</Message></Response>")]
    r = carrier_post(server, account, "Messages", From="+14155552000", To=POOL, Body="again")
    assert r.status_code == 200, r.text  # the slots were given back
