"""Tenants' URLs reach only what the outbound policy allows: public addresses, and what the
operator names (SIMPLANE_OUTBOUND_ALLOW). The test server allows loopback, as `serve` does when
it listens on loopback; `public_only` takes that away for a test."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from twilio.base.exceptions import TwilioRestException

from simplane.core import callbacks
from simplane.core.models import Callback
from simplane.core.outbound import Policy, default_allow
from simplane.events.models import EventSink
from tests.proxy.conftest import carrier_post, own
from tests.support import Receiver, free_port

INTERNAL = ("http://127.0.0.1/", "http://127.1/", "http://2130706433/", "http://0x7f.1/",
            "http://0.0.0.0/", "http://[::1]/", "http://[::ffff:127.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/", "http://[fe80::1]/",
            "http://100.64.0.1/", "http://[fd00::1]/")


@pytest.fixture
def public_only(server) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The server as it runs when it listens on a public address: public addresses only."""
    kept = server.runtime.outbound
    server.runtime.outbound = Policy.parse("none")
    yield
    server.runtime.outbound = kept


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def test_the_policy_allows_public_addresses_and_what_the_operator_names():
    public = Policy.parse("none")
    assert public.allows(_ip("93.184.216.34")) and public.allows(_ip("2606:4700::1111"))
    for text in ("127.0.0.1", "::1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "100.64.0.1",
                 "fd12::1", "169.254.169.254", "fe80::1", "0.0.0.0", "::", "224.0.0.1",
                 "255.255.255.255", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::7f00:1",
                 "2002:7f00:1::1", "192.0.2.1"):
        assert not public.allows(_ip(text)), text
    assert public.allows(_ip("::ffff:93.184.216.34"))  # judged by the IPv4 address it carries
    loopback = Policy.parse("loopback")
    assert loopback.allows(_ip("127.0.0.1")) and loopback.allows(_ip("::ffff:127.0.0.2"))
    assert loopback.allows(_ip("::1")) and not loopback.allows(_ip("10.0.0.1"))
    private = Policy.parse("private")
    assert all(private.allows(_ip(t)) for t in ("10.0.0.1", "172.31.0.1", "192.168.0.1",
                                                "100.127.0.1", "fd00::1"))
    assert not private.allows(_ip("127.0.0.1"))
    # `any` is every unicast address but link-local and unspecified ones: only a CIDR names those
    anything = Policy.parse("any")
    assert anything.allows(_ip("127.0.0.1")) and anything.allows(_ip("10.0.0.1"))
    for text in ("169.254.169.254", "fe80::1", "0.0.0.0", "::", "::ffff:169.254.169.254"):
        assert not anything.allows(_ip(text)), text
    named = Policy.parse(" 169.254.169.254/32, 10.2.0.0/16, hooks.internal ")
    assert named.allows(_ip("169.254.169.254")) and named.allows(_ip("10.2.3.4"))
    assert not named.allows(_ip("10.3.0.1"))
    assert named.allows(_ip("10.9.9.9"), "HOOKS.internal.") and not named.allows(_ip("10.9.9.9"))
    assert not named.allows(_ip("169.254.1.1"), "hooks.internal")
    for bad in ("10.0.0.0/33", "loopback,none", "http://x/", "everything!"):
        with pytest.raises(ValueError):
            Policy.parse(bad)
    # `serve` allows loopback when it listens on loopback only
    assert default_allow("127.0.0.1") == "loopback" and default_allow("::1") == "loopback"
    assert default_allow("localhost") == "loopback"
    assert default_allow("0.0.0.0") == "none" and default_allow("192.0.2.10") == "none"


def test_an_ip_literal_outside_the_policy_is_a_400_naming_the_parameter(
        server, account, public_only):  # type: ignore[no-untyped-def]
    proxy = account.client.proxy.v1
    for url in INTERNAL:
        with pytest.raises(TwilioRestException) as exc:
            proxy.services.create(unique_name="s", out_of_session_callback_url=url)
        assert exc.value.status == 400, url
        assert "OutOfSessionCallbackUrl" in exc.value.msg and "outbound" in exc.value.msg, url
    service = proxy.services.create(unique_name="s", callback_url="https://example.com/cb")
    with pytest.raises(TwilioRestException) as exc:
        proxy.services(service.sid).update(intercept_callback_url="http://[::1]:8080/x")
    assert exc.value.status == 400 and "InterceptCallbackUrl" in exc.value.msg
    [sid] = server.provision(account.sid, 1)
    with pytest.raises(TwilioRestException) as exc:
        account.client.wireless.v1.sims(sid).update(callback_url="http://169.254.169.254/")
    assert exc.value.status == 400 and "CallbackUrl" in exc.value.msg
    with pytest.raises(TwilioRestException) as exc:
        account.client.supersim.v1.esim_profiles.create(
            generate_matching_id=True, callback_url="http://127.1:9/")
    assert exc.value.status == 400 and "CallbackUrl" in exc.value.msg
    with pytest.raises(TwilioRestException) as exc:
        account.client.events.v1.sinks.create(
            description="d", sink_type="webhook",
            sink_configuration={"destination": "http://2130706433/", "method": "POST"})
    assert exc.value.status == 400 and "destination" in exc.value.msg
    assert [s.unique_name for s in proxy.services.list()] == ["s"]
    # A host name is taken: it is checked when it is requested.
    assert proxy.services(service.sid).update(
        intercept_callback_url="http://localhost/x").intercept_callback_url == "http://localhost/x"


def test_the_operator_may_allow_more(server, account):  # type: ignore[no-untyped-def]
    service = account.client.proxy.v1.services.create(
        unique_name="local", out_of_session_callback_url="http://127.0.0.1:9/oos")
    assert service.out_of_session_callback_url == "http://127.0.0.1:9/oos"
    with pytest.raises(TwilioRestException) as exc:  # loopback is allowed; 169.254/16 is not
        account.client.proxy.v1.services.create(
            unique_name="meta", out_of_session_callback_url="http://169.254.169.254/")
    assert exc.value.status == 400


def test_a_refused_webhook_is_a_failed_delivery_whatever_the_port(
        server, account, receiver, public_only):  # type: ignore[no-untyped-def]
    events = account.client.events.v1
    closed = free_port()
    errors = []
    for port in (receiver.port, closed):  # one listens, one does not: the same error
        sink = events.sinks.create(
            description="d", sink_type="webhook",
            sink_configuration={"destination": f"http://localhost:{port}/e", "method": "POST"})
        events.sinks(sink.sid).sink_test.create()
        server.drain()
        with server.runtime.db.read() as db:
            row = db.scalar(select(EventSink).where(EventSink.sid == sink.sid))
            errors.append((row.last_error, row.attempts, row.status))
    assert errors == [("address not allowed", 1, "active")] * 2  # retried until the horizon
    assert receiver.requests.empty()


def test_a_refused_callback_is_retried_like_any_failed_one(
        server, account, receiver, public_only):  # type: ignore[no-untyped-def]
    url = f"http://localhost:{receiver.port}/cb"
    with server.runtime.db.write() as db:
        callbacks.enqueue(db, server.runtime, account.sid, url, "POST", {"n": "1"})
    server.drain()
    with server.runtime.db.read() as db:
        row = db.query(Callback).filter_by(account_sid=account.sid, url=url).one()
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, None)
    assert receiver.requests.empty()


def test_proxy_callbacks_to_a_refused_address_are_not_sent(
        server, account, receiver, public_only):  # type: ignore[no-untyped-def]
    proxy = account.client.proxy.v1
    service = proxy.services.create(
        unique_name="s", out_of_session_callback_url=f"http://localhost:{receiver.port}/oos")
    own(account, "+14155550100")
    proxy.services(service.sid).phone_numbers.create(phone_number="+14155550100")
    r = carrier_post(server, account, "Messages", From="+14155550199", To="+14155550100",
                     Body="hi")
    assert r.status_code == 502 and r.json()["code"] == 80913, r.text
    assert r.json()["message"] == "The out-of-session callback failed"
    assert receiver.requests.empty()


def test_redirects_are_not_followed(server, account, receiver):  # type: ignore[no-untyped-def]
    elsewhere = Receiver()
    try:
        receiver.answers = [(302, "text/plain", "")]
        receiver.headers = {"Location": f"{elsewhere.url}/stolen"}
        with server.runtime.db.write() as db:
            callbacks.enqueue(db, server.runtime, account.sid, f"{receiver.url}/cb", "POST", {})
        server.drain()
        assert receiver.get().path == "/cb"
        assert elsewhere.requests.empty()
    finally:
        elsewhere.close()


def test_the_out_of_session_answer_is_acted_on_never_echoed(
        server, account, receiver):  # type: ignore[no-untyped-def]
    """A tenant cannot read what an internal URL serves through the operator endpoint: what
    comes back is what simplane did (Twilio sends a <Message> in the TwiML to the sender)."""
    proxy = account.client.proxy.v1
    service = proxy.services.create(unique_name="s",
                                    out_of_session_callback_url=f"{receiver.url}/oos")
    own(account, "+14155550100")
    proxy.services(service.sid).phone_numbers.create(phone_number="+14155550100")
    secret = "<Response><Secret>internal-token-42</Secret><Message>Closed</Message></Response>"
    receiver.answers = [(200, "text/xml", secret)]
    r = carrier_post(server, account, "Messages", From="+14155550199", To="+14155550100",
                     Body="hi")
    assert r.status_code == 200, r.text
    assert "internal-token-42" not in r.text and "<" not in r.text
    [reply] = r.json()["messages"]
    assert (reply["to"], reply["from"], reply["body"]) == ("+14155550199", "+14155550100",
                                                           "Closed")
