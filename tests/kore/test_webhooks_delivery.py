"""Callbacks configured through KORE's flavour arrive as KORE sends them: kore-signature from the
account's active secret (checked here with hashlib, from KORE's formula), a
kore-idempotency-token per event, KoreProxy/1.1. Those configured through Twilio's keep
X-Twilio-Signature."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import timedelta

import httpx
import pytest
from twilio.request_validator import RequestValidator

from simplane.core.signature import kore_signature
from simplane.supersim import devices
from tests import support
from tests.kore.conftest import new_client, token_of
from tests.kore.hooks import create_secret, expected_signature, header, signed_by, webhook_api
from tests.support import Received

KORE_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class Kore:
    """The KORE flavour's Programmable Wireless and Super SIM, as a KORE API client calls them."""

    def __init__(self, server: support.Server, account: support.TestAccount) -> None:
        token = token_of(server, new_client(server, account.sid))
        self.http = httpx.Client(base_url=f"{server.base_url}/kore",
                                 headers={"Authorization": f"Bearer {token}"})

    def post(self, path: str, **form: str) -> dict:
        response = self.http.post(path, data=form)
        assert response.status_code < 300, response.text
        return response.json()


@pytest.fixture
def kore_api(server, account):  # type: ignore[no-untyped-def]
    api = Kore(server, account)
    yield api
    api.http.close()


@pytest.fixture
def attached_sim(server, account):  # type: ignore[no-untyped-def]
    """An active Wireless SIM on a plan that allows commands, attached to the network."""
    account.client.wireless.v1.rate_plans.create(unique_name="p")
    [sid] = server.provision(account.sid, 1, status="active", rate_plan="p")
    server.network(sid, "attachment.accepted")
    return sid


def params_of(got: Received) -> dict[str, str]:
    return {k: v[0] for k, v in got.form.items()}


def assert_kore(got: Received) -> str:
    """The KORE headers are there, Twilio's signature is not; returns the idempotency token."""
    assert header(got, "User-Agent") == "KoreProxy/1.1"
    assert header(got, "X-Twilio-Signature") is None
    token = header(got, "kore-idempotency-token")
    assert token and uuid.UUID(token)
    assert KORE_DATE.match(header(got, "date") or "")
    return token


def test_the_formula_gives_kores_published_examples():
    """The two examples of KORE's "Validate Webhook Signatures" guide."""
    assert kore_signature("secret12345", "POST", "https://testendpoint.com",
                          b"field1=value1&field2=value2") == (
        "4fdba0cb1394cc8d17b8dabb04634aa9a951021a7b161f9c7a2186cd490b18b2")
    assert kore_signature("a35974bdf1c769b8bb", "POST", "https://testendpoint.com",
                          b'{"field1":"value1","field2":"value2"}') == (
        "d21c555b37789cdb9433a85760d326f0c637d5c17676b8dc49918ec629c67d59")
    assert kore_signature(None, "POST", "https://testendpoint.com", b"x") == ""
    # The query and the fragment are not signed.
    assert kore_signature("s", "GET", "https://h.example/cb?a=1#f", b"") == hashlib.sha256(
        b"sGEThttps://h.example/cb").hexdigest()


def test_a_kore_command_callback_is_signed_with_the_active_secret(server, account, kore_api,
                                                                   attached_sim, receiver):
    secret = create_secret(server, account)["secret"]
    url = f"{receiver.url}/commands?site=7"
    command = kore_api.post("/programmable-wireless/v1/Commands", Sim=attached_sim,
                            Command="ping", CallbackUrl=url)
    server.drain()
    got = receiver.get()
    assert got.method == "POST" and got.url == url
    assert params_of(got)["CommandSid"] == command["sid"]
    assert params_of(got)["CommandStatus"] == "delivered"
    assert_kore(got)
    assert signed_by(got, secret)
    assert header(got, "kore-signature") == hashlib.sha256(
        secret.encode() + b"POST" + f"{receiver.url}/commands".encode() + got.body).hexdigest()
    assert not signed_by(got, "another secret")


def test_a_retry_keeps_the_token_and_each_event_has_its_own(server, account, kore_api,
                                                            attached_sim, receiver):
    create_secret(server, account)
    receiver.statuses = [503]
    kore_api.post("/programmable-wireless/v1/Commands", Sim=attached_sim, Command="one",
                  CallbackUrl=f"{receiver.url}/cb")
    server.drain()
    first = receiver.get()
    server.clock.advance(timedelta(minutes=15))  # past the backoff
    server.drain()
    retried = receiver.get()
    assert params_of(retried) == params_of(first)
    assert assert_kore(retried) == assert_kore(first)
    kore_api.post("/programmable-wireless/v1/Commands", Sim=attached_sim, Command="two",
                  CallbackUrl=f"{receiver.url}/cb")
    server.drain()
    other = receiver.get()
    assert params_of(other)["CommandSid"] != params_of(first)["CommandSid"]
    assert assert_kore(other) != assert_kore(first)


def test_without_a_secret_the_signature_is_empty(server, account, kore_api, attached_sim,
                                                 receiver):
    kore_api.post("/programmable-wireless/v1/Commands", Sim=attached_sim, Command="ping",
                  CallbackUrl=f"{receiver.url}/cb")
    server.drain()
    got = receiver.get()
    assert_kore(got)
    assert header(got, "kore-signature") == ""


def test_the_secret_active_when_it_is_sent_signs(server, account, kore_api, attached_sim,
                                                 receiver):
    old = create_secret(server, account, "old")["secret"]
    kore_api.post("/programmable-wireless/v1/Commands", Sim=attached_sim, Command="ping",
                  CallbackUrl=f"{receiver.url}/cb")
    new = create_secret(server, account, "new")
    with webhook_api(server, account) as api:  # rotated before the callback goes
        assert api.patch(f"/secrets/{new['id']}", json={"Status": "active"}).status_code == 200
    server.drain()
    got = receiver.get()
    assert signed_by(got, new["secret"]) and not signed_by(got, old)


def test_a_get_callback_signs_the_url_without_its_query(server, account, kore_api,
                                                        attached_sim, receiver):
    secret = create_secret(server, account)["secret"]
    kore_api.post("/programmable-wireless/v1/Commands", Sim=attached_sim, Command="ping",
                  CallbackUrl=f"{receiver.url}/cb?site=7", CallbackMethod="GET")
    server.drain()
    got = receiver.get()
    assert got.method == "GET" and got.body == b""
    assert params_of(got)["site"] == "7" and params_of(got)["CommandStatus"] == "delivered"
    assert header(got, "kore-signature") == expected_signature(secret, "GET",
                                                               f"{receiver.url}/cb", b"")


def test_the_twilio_flavour_keeps_x_twilio_signature(server, account, attached_sim, receiver):
    create_secret(server, account)  # a KORE secret changes nothing for Twilio's callbacks
    url = f"{receiver.url}/cb"
    account.client.wireless.v1.commands.create(sim=attached_sim, command="ping",
                                               callback_url=url)
    server.drain()
    got = receiver.get()
    assert header(got, "User-Agent") == "TwilioProxy/1.1"
    assert header(got, "kore-signature") is None and header(got, "kore-idempotency-token") is None
    assert RequestValidator(account.token).validate(got.url, params_of(got),
                                                    header(got, "X-Twilio-Signature"))


def test_super_sim_commands_sims_and_esim_profiles_through_kore(server, account, kore_api,
                                                                receiver):
    from tests.supersim.conftest import ATT, stock

    secret = create_secret(server, account)["secret"]
    kore_api.post("/supersim/v1/NetworkAccessProfiles", UniqueName="nap", Networks=ATT.sid)
    kore_api.post("/supersim/v1/Fleets", NetworkAccessProfile="nap", UniqueName="fleet")
    [row] = stock(server)
    sim = kore_api.post("/supersim/v1/Sims", Iccid=row["iccid"],
                        RegistrationCode=row["registration_code"])
    kore_api.post(f"/supersim/v1/Sims/{sim['sid']}", Fleet="fleet", Status="active",
                  CallbackUrl=f"{receiver.url}/sim")
    server.drain()
    got = receiver.get()
    assert got.path == "/sim" and params_of(got)["SimStatus"] == "active"
    assert_kore(got)
    assert signed_by(got, secret)

    device = devices.SimulatedDevice()
    device.attach(server.runtime, sim["sid"])
    try:
        kore_api.post("/supersim/v1/SmsCommands", Sim=sim["sid"], Payload="ping",
                      CallbackUrl=f"{receiver.url}/sms")
        server.drain()
    finally:
        device.close()
    for status in ("sent", "delivered"):
        got = receiver.get()
        assert got.path == "/sms" and params_of(got)["Status"] == status
        assert_kore(got)
        assert signed_by(got, secret)

    # An EID of its own: a profile left available for another test's EID would be the one found.
    kore_api.post("/supersim/v1/ESimProfiles", Eid="89049032005008882600033489123537",
                  CallbackUrl=f"{receiver.url}/esim")
    server.drain()
    got = receiver.get()
    assert got.path == "/esim" and params_of(got)["Status"] == "available"
    assert_kore(got)
    assert signed_by(got, secret)


def test_wireless_sim_status_and_commands_callbacks_through_kore(server, account, kore_api,
                                                                receiver):
    from simplane.wireless import service
    from simplane.wireless.models import Sim

    secret = create_secret(server, account)["secret"]
    account.client.wireless.v1.rate_plans.create(unique_name="p")
    [sid] = server.provision(account.sid, 1, status="new", rate_plan="p")
    kore_api.post(f"/programmable-wireless/v1/Sims/{sid}", Status="active",
                  CallbackUrl=f"{receiver.url}/status",
                  CommandsCallbackUrl=f"{receiver.url}/mo")
    server.drain()
    got = receiver.get()
    assert got.path == "/status" and params_of(got)["SimStatus"] == "active"
    assert_kore(got)
    assert signed_by(got, secret)
    with server.runtime.db.write() as db:
        sim = db.query(Sim).filter_by(sid=sid).one()
        service.receive_from_sim(db, server.runtime, sim, "reading=42")
    server.drain()
    got = receiver.get()
    assert got.path == "/mo" and params_of(got)["Command"] == "reading=42"
    assert_kore(got)
    assert signed_by(got, secret)


def test_a_fleets_sms_commands_url_set_through_kore(server, account, kore_api, receiver):
    from tests.supersim.conftest import ATT, stock

    secret = create_secret(server, account)["secret"]
    kore_api.post("/supersim/v1/NetworkAccessProfiles", UniqueName="nap", Networks=ATT.sid)
    kore_api.post("/supersim/v1/Fleets", NetworkAccessProfile="nap", UniqueName="fleet",
                  SmsCommandsUrl=f"{receiver.url}/from-sim")
    [row] = stock(server)
    sim = kore_api.post("/supersim/v1/Sims", Iccid=row["iccid"],
                        RegistrationCode=row["registration_code"])
    kore_api.post(f"/supersim/v1/Sims/{sim['sid']}", Fleet="fleet", Status="active")
    server.drain()
    device = devices.SimulatedDevice()
    device.attach(server.runtime, sim["sid"])
    try:
        device.send_sms(server.runtime, "hello")
        server.drain()
    finally:
        device.close()
    got = receiver.get()
    assert got.path == "/from-sim" and params_of(got)["Payload"] == "hello"
    assert_kore(got)
    assert signed_by(got, secret)


def test_without_its_secrets_a_kore_callback_waits_and_twilios_go(server, account, kore_api,
                                                                  attached_sim, receiver):
    secret = create_secret(server, account)["secret"]
    lookup = server.runtime.webhook_secrets.pop("kore")
    try:
        kore_api.post("/programmable-wireless/v1/Commands", Sim=attached_sim, Command="kore",
                      CallbackUrl=f"{receiver.url}/kore")
        account.client.wireless.v1.commands.create(sim=attached_sim, command="twilio",
                                                   callback_url=f"{receiver.url}/twilio")
        server.drain()
        got = receiver.get()
        assert got.path == "/twilio" and receiver.requests.empty()  # never signed with nothing
    finally:
        server.runtime.webhook_secrets["kore"] = lookup
    server.clock.advance(timedelta(minutes=15))
    server.drain()
    got = receiver.get()
    assert got.path == "/kore" and signed_by(got, secret)


def test_the_plugins_receiver_checks_kore_signature():
    from simplane.testing.webhooks import Request

    body = b"field1=value1&field2=value2"
    signed = Request("POST", "https://testendpoint.com", "/", httpx.Headers(
        {"kore-signature": "4fdba0cb1394cc8d17b8dabb04634aa9a951021a7b161f9c7a2186cd490b18b2"}),
        body)
    assert signed.kore_signature_holds("secret12345")
    assert not signed.kore_signature_holds("another") and not signed.kore_signature_holds(None)
    unsigned = Request("POST", "https://testendpoint.com", "/",
                       httpx.Headers({"kore-signature": ""}), body)
    assert unsigned.kore_signature_holds(None)
