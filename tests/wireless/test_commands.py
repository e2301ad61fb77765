"""Commands: limits, delivery through the device gateway, signed callbacks."""

from __future__ import annotations

import base64

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator


@pytest.fixture
def active_sim(server, account):
    account.client.wireless.v1.rate_plans.create(unique_name="p")
    [sid] = server.provision(account.sid, 1, status="active", rate_plan="p")
    account.client.wireless.v1.sims(sid).update(unique_name="device")
    server.network(sid, "attachment.accepted")  # the device is on the network
    return sid


def test_a_command_waits_queued_until_the_device_attaches(server, account, receiver):
    account.client.wireless.v1.rate_plans.create(unique_name="p")
    [sid] = server.provision(account.sid, 1, status="active", rate_plan="p")
    commands = account.client.wireless.v1.commands
    command = commands.create(sim=sid, command="wake", callback_url=receiver.url)
    server.drain()
    assert commands(command.sid).fetch().status == "queued"
    server.network(sid, "attachment.rejected", mcc="234", mnc="15")
    server.drain()
    assert commands(command.sid).fetch().status == "queued"
    server.network(sid, "attachment.accepted", mcc="234", mnc="15")
    server.drain()
    got = receiver.get()
    assert got.form["CommandSid"] == [command.sid], got.form  # (what else reached the receiver)
    assert got.form["CommandStatus"] == ["delivered"]
    assert commands(command.sid).fetch().status == "delivered"
    server.network(sid, "attachment.failed")  # gone again: the next one waits
    later = commands.create(sim=sid, command="again")
    server.drain()
    assert commands(later.sid).fetch().status == "queued"


def test_a_command_queued_when_the_plan_stops_messaging_fails(server, account, receiver):
    account.client.wireless.v1.rate_plans.create(unique_name="chatty")
    account.client.wireless.v1.rate_plans.create(unique_name="quiet", messaging_enabled=False)
    [sid] = server.provision(account.sid, 1, status="active", rate_plan="chatty")
    command = account.client.wireless.v1.commands.create(sim=sid, command="x",
                                                         callback_url=receiver.url)
    account.client.wireless.v1.sims(sid).update(rate_plan="quiet")
    server.drain()  # not attached, but it can never be delivered now
    assert receiver.get().form["CommandStatus"] == ["failed"]
    assert account.client.wireless.v1.commands(command.sid).fetch().status == "failed"


def test_a_command_from_the_sim_reaches_its_commands_callback_signed(server, account, receiver):
    from simplane.wireless import service
    from simplane.wireless.models import Sim

    account.client.wireless.v1.rate_plans.create(unique_name="p")
    [sid] = server.provision(account.sid, 1, status="active", rate_plan="p")
    account.client.wireless.v1.sims(sid).update(commands_callback_url=f"{receiver.url}/mo",
                                                unique_name="meter")
    with server.runtime.db.write() as db:
        sim = db.query(Sim).filter_by(sid=sid).one()
        sent = service.receive_from_sim(db, server.runtime, sim, "reading=42")
    server.drain()
    got = receiver.get()
    params = {k: v[0] for k, v in got.form.items()}
    assert params["CommandSid"] == sent.sid and params["Command"] == "reading=42"
    assert params["Direction"] == "from_sim" and params["CommandStatus"] == "received"
    assert params["SimUniqueName"] == "meter"
    assert RequestValidator(account.token).validate(got.url, params,
                                                    got.headers["X-Twilio-Signature"])
    [listed] = account.client.wireless.v1.commands.list(direction="from_sim")
    assert listed.sid == sent.sid and listed.status == "received"


def test_command_is_queued_then_delivered_with_a_signed_callback(server, account, active_sim,
                                                                  receiver):
    commands = account.client.wireless.v1.commands
    command = commands.create(sim="device", command="ping", callback_url=f"{receiver.url}/cb")
    assert command.status == "queued" and command.direction == "to_sim"
    assert command.sim_sid == active_sim and command.command_mode == "text"
    assert command.transport == "sms" and command.delivery_receipt_requested is True
    server.drain()
    got = receiver.get()
    params = {k: v[0] for k, v in got.form.items()}
    assert params["CommandSid"] == command.sid and params["CommandStatus"] == "delivered"
    assert RequestValidator(account.token).validate(got.url, params,
                                                    got.headers["X-Twilio-Signature"])
    assert not RequestValidator("wrong-token").validate(got.url, params,
                                                        got.headers["X-Twilio-Signature"])
    assert commands(command.sid).fetch().status == "delivered"


def test_without_receipt_the_command_ends_sent(server, account, active_sim, receiver):
    command = account.client.wireless.v1.commands.create(
        sim=active_sim, command="x", delivery_receipt_requested=False,
        callback_url=f"{receiver.url}/cb", callback_method="GET")
    server.drain()
    got = receiver.get()
    assert got.method == "GET" and got.form["CommandStatus"] == ["sent"]
    assert RequestValidator(account.token).validate(got.url, {}, got.headers["X-Twilio-Signature"])
    assert account.client.wireless.v1.commands(command.sid).fetch().status == "sent"


def test_include_sid_and_text_limits(account, active_sim):
    commands = account.client.wireless.v1.commands
    start = commands.create(sim=active_sim, command="hello", include_sid="start")
    assert start.command == f"{start.sid} hello"
    end = commands.create(sim=active_sim, command="hello", include_sid="end")
    assert end.command == f"hello {end.sid}"
    assert len(commands.create(sim=active_sim, command="x" * 160).command) == 160
    with pytest.raises(TwilioRestException) as exc:
        commands.create(sim=active_sim, command="x" * 161)
    assert exc.value.code == 33101 and "160" in exc.value.msg
    with pytest.raises(TwilioRestException) as exc:
        commands.create(sim=active_sim, command="x" * 126, include_sid="start")
    assert "125" in exc.value.msg
    with pytest.raises(TwilioRestException) as exc:
        commands.create(sim=active_sim, command="x", include_sid="middle")
    assert "IncludeSid" in exc.value.msg


def test_binary_commands(account, active_sim):
    commands = account.client.wireless.v1.commands
    payload = base64.b64encode(bytes(range(140))).decode()
    assert commands.create(sim=active_sim, command=payload, command_mode="binary").command == payload
    for bad in (base64.b64encode(bytes(141)).decode(), "not base64!"):
        with pytest.raises(TwilioRestException) as exc:
            commands.create(sim=active_sim, command=bad, command_mode="binary")
        assert exc.value.status == 400 and "binary" in exc.value.msg


def test_commands_need_an_active_sim_with_messaging(server, account):
    account.client.wireless.v1.rate_plans.create(unique_name="quiet", messaging_enabled=False)
    [new_sim] = server.provision(account.sid, 1)
    [quiet] = server.provision(account.sid, 1, status="active", rate_plan="quiet")
    commands = account.client.wireless.v1.commands
    with pytest.raises(TwilioRestException) as exc:
        commands.create(sim=new_sim, command="x")
    assert exc.value.code == 33104 and "new" in exc.value.msg
    with pytest.raises(TwilioRestException) as exc:
        commands.create(sim=quiet, command="x")
    assert exc.value.code == 33201 and "messaging" in exc.value.msg
    with pytest.raises(TwilioRestException) as exc:
        commands.create(command="x")
    assert "Sim" in exc.value.msg
    with pytest.raises(TwilioRestException) as exc:
        commands.create(sim="DE" + "1" * 32, command="x")
    assert exc.value.code == 33107
    assert commands.list() == []


def test_a_sim_suspended_before_delivery_fails_the_command(server, account, active_sim, receiver):
    command = account.client.wireless.v1.commands.create(sim=active_sim, command="x",
                                                         callback_url=receiver.url)
    account.client.wireless.v1.sims(active_sim).update(status="suspended")
    server.drain()
    assert receiver.get().form["CommandStatus"] == ["failed"]
    assert account.client.wireless.v1.commands(command.sid).fetch().status == "failed"


def test_list_filters_fetch_and_delete(server, account, active_sim):
    commands = account.client.wireless.v1.commands
    first = commands.create(sim=active_sim, command="a")
    server.drain()
    second = commands.create(sim=active_sim, command="b")
    assert [c.sid for c in commands.list()] == [second.sid, first.sid]  # newest first
    assert [c.sid for c in commands.list(status="queued")] == [second.sid]
    assert [c.sid for c in commands.list(sim="device", status="delivered")] == [first.sid]
    assert [c.sid for c in commands.list(direction="from_sim")] == []
    assert [c.sid for c in commands.list(transport="sms")] == [second.sid, first.sid]
    assert commands(first.sid).delete() is True
    with pytest.raises(TwilioRestException) as exc:
        commands(first.sid).fetch()
    assert exc.value.status == 404


def test_commands_of_other_accounts_are_invisible(server, account, active_sim):
    command = account.client.wireless.v1.commands.create(sim=active_sim, command="a")
    other = server.new_account()
    with pytest.raises(TwilioRestException) as exc:
        other.client.wireless.v1.commands(command.sid).fetch()
    assert exc.value.status == 404
    assert other.client.wireless.v1.commands.list() == []
    with pytest.raises(TwilioRestException) as exc:
        other.client.wireless.v1.commands.create(sim=active_sim, command="hijack")
    assert exc.value.code == 33107
