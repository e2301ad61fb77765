"""What each participant received, as the simulated carrier delivered it: the operator endpoint
and `simplane proxy outbox`; and numbers the operator gives an account."""

from __future__ import annotations

import httpx
from typer.testing import CliRunner

from simplane.cli import app
from simplane.proxy import carrier
from tests.proxy.conftest import carrier_post, outbox, ride
from tests.support import raises

runner = CliRunner()


def test_a_conversation_both_ways_never_shows_a_real_number(server, account, admin):
    session, rider, driver = ride(account)
    lines = [(rider, "I'm at the corner"), (driver, "2 minutes away"), (rider, "blue coat")]
    for sender, body in lines:
        r = carrier_post(server, account, "Messages", From=sender.identifier,
                         To=sender.proxy_identifier, Body=body)
        assert r.status_code == 201, r.text
    server.drain()
    to_driver = outbox(server, admin, account, driver.identifier)
    to_rider = outbox(server, admin, account, rider.identifier)
    assert [m["body"] for m in reversed(to_driver)] == ["I'm at the corner", "blue coat"]
    assert [m["body"] for m in to_rider] == ["2 minutes away"]
    assert {m["from"] for m in to_driver} == {driver.proxy_identifier}
    assert {m["from"] for m in to_rider} == {rider.proxy_identifier}
    assert all(m["status"] == "delivered" and m["session_sid"] == session.fetch().sid
               for m in to_driver + to_rider)
    interactions = session.interactions.list()
    assert {m["interaction_sid"] for m in to_driver + to_rider} == {i.sid for i in interactions}
    assert {m["sid"] for m in to_driver + to_rider} == {i.outbound_resource_sid
                                                      for i in interactions}


def test_outbox_is_for_admins(server, account, admin):
    ride(account)
    url = f"{server.base_url}/proxy/operator/Outbox"
    r = httpx.get(url, auth=(account.sid, account.token))
    assert r.status_code == 403 and r.json()["code"] == 20403
    assert httpx.get(url).status_code == 401
    r = httpx.get(url, params={"PageSize": "0"}, auth=(admin.sid, admin.token))
    assert r.status_code == 400 and "PageSize" in r.json()["message"]


def test_cli_outbox_prints_what_was_delivered(server, account, database_url):
    session, rider, _driver = ride(account)
    session.participants(rider.sid).message_interactions.create(body="your driver is here")
    server.drain()
    result = runner.invoke(app, ["proxy", "outbox", "--to", rider.identifier,
                                 "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert "your driver is here" in result.stdout and rider.proxy_identifier in result.stdout
    result = runner.invoke(app, ["proxy", "outbox", "--to", "+14155550000",
                                 "--database-url", database_url])
    assert result.exit_code == 0 and "your driver" not in result.stdout


def test_cli_gives_an_account_numbers_for_its_pools(server, account, database_url):
    result = runner.invoke(app, ["proxy", "numbers", "add", "+14155550100", "+442071838750",
                                 "--account", account.sid, "--database-url", database_url])
    assert result.exit_code == 0, result.output
    us, uk = result.stdout.split()
    assert us.startswith("PN") and uk.startswith("PN")
    again = runner.invoke(app, ["proxy", "numbers", "add", "+14155550100",
                                "--account", account.sid, "--database-url", database_url])
    assert again.stdout.split() == [us]  # owned once, one SID
    listed = runner.invoke(app, ["proxy", "numbers", "list", "--account", account.sid,
                                 "--database-url", database_url])
    assert us in listed.stdout and "+442071838750" in listed.stdout
    bad = runner.invoke(app, ["proxy", "numbers", "add", "+14155550101", "0800-CALL-ME",
                              "--account", account.sid, "--database-url", database_url])
    assert bad.exit_code == 1 and "0800-CALL-ME" in bad.output

    proxy = account.client.proxy.v1
    svc = proxy.services.create(unique_name="by-sid")
    n = proxy.services(svc.sid).phone_numbers.create(sid=uk)
    assert (n.sid, n.phone_number, n.iso_country) == (uk, "+442071838750", "GB")
    # A number added by value that the account owns keeps its SID.
    assert proxy.services(svc.sid).phone_numbers.create(phone_number="+14155550100").sid == us
    other = server.new_account()
    osvc = other.client.proxy.v1.services.create(unique_name="theirs")
    with raises(20404, 400):
        other.client.proxy.v1.services(osvc.sid).phone_numbers.create(sid=us)


class _Carrier(carrier.SimulatedCarrier):
    """Fails on one recipient, answers `queued`/`initiated` (still pending) for the others."""

    def send_message(self, db, message, now):  # type: ignore[no-untyped-def]
        if message.to_number == "+14155550111":
            raise RuntimeError("the carrier refused it")
        super().send_message(db, message, now)
        return "queued"

    def place_call(self, db, call, now):  # type: ignore[no-untyped-def]
        super().place_call(db, call, now)
        if call.to_number == "+14155550111":
            super().place_call(db, call, now)  # the same SID twice: the outbox refuses it
        return "initiated"


def test_one_failing_leg_does_not_hold_up_the_others(server, account, admin, monkeypatch):
    session, rider, driver = ride(account)
    to_rider = session.participants(rider.sid).message_interactions.create(body="one")
    to_driver = session.participants(driver.sid).message_interactions.create(body="two")
    call_rider = carrier_post(server, account, "Calls", From=driver.identifier,
                              To=driver.proxy_identifier).json()
    call_driver = carrier_post(server, account, "Calls", From=rider.identifier,
                               To=rider.proxy_identifier).json()
    monkeypatch.setattr(carrier, "carrier", _Carrier())
    server.drain()
    statuses = {i.sid: i.outbound_resource_status for i in session.interactions.list()}
    assert statuses == {to_rider.sid: "failed", call_rider["interaction_sid"]: "failed",
                        # still pending for the carrier: handed over, never handed over again
                        to_driver.sid: "sent", call_driver["interaction_sid"]: "ringing"}
    assert outbox(server, admin, account, rider.identifier) == []
    assert [(d["kind"], d["body"]) for d in outbox(server, admin, account, driver.identifier)] \
        == [("call", None), ("message", "two")]
