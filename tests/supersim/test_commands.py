"""SMS Commands and IP Commands: real UDP datagrams on loopback, signed callbacks."""

from __future__ import annotations

import base64

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from simplane.supersim import devices, udp
from tests.supersim.conftest import stock


@pytest.fixture
def device(server, active_sim):  # type: ignore[no-untyped-def]
    d = devices.SimulatedDevice()
    d.attach(server.runtime, active_sim.sid)
    yield d
    d.close()


def _params(got) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {k: v[0] for k, v in got.form.items()}


def test_sms_command_reaches_the_device_with_signed_callbacks(server, account, twilio,
                                                             active_sim, device, receiver):
    command = twilio.supersim.v1.sms_commands.create(sim="tracker", payload="ping",
                                                     callback_url=f"{receiver.url}/sms")
    assert command.sid.startswith("HC") and command.status == "queued"
    assert command.direction == "to_sim" and command.sim_sid == active_sim.sid
    server.drain()
    assert device.sms == ["ping"]
    statuses = [_params(receiver.get()) for _ in range(2)]
    assert [p["Status"] for p in statuses] == ["sent", "delivered"]
    got_url = f"{receiver.url}/sms"
    assert all(p["SmsCommandSid"] == command.sid for p in statuses)
    assert twilio.supersim.v1.sms_commands(command.sid).fetch().status == "delivered"
    validator = RequestValidator(account.token)
    command2 = twilio.supersim.v1.sms_commands.create(sim=active_sim.sid, payload="x" * 160,
                                                      callback_url=got_url, callback_method="GET")
    server.drain()
    got = receiver.get()
    assert got.method == "GET"
    assert validator.validate(got.url, {}, got.headers["X-Twilio-Signature"])
    assert twilio.supersim.v1.sms_commands.list(direction="to_sim", status="delivered",
                                                sim="tracker")[0].sid == command2.sid


def test_sms_from_the_device_is_posted_to_the_fleet(server, account, twilio, fleet, active_sim,
                                                   device, receiver):
    twilio.supersim.v1.fleets(fleet.sid).update(sms_commands_url=f"{receiver.url}/mo")
    sid = device.send_sms(server.runtime, "hello from the field")
    server.drain()
    got = receiver.get()
    params = _params(got)
    assert got.path == "/mo" and params["Payload"] == "hello from the field"
    assert params["Direction"] == "from_sim" and params["Status"] == "received"
    assert params["SmsCommandSid"] == sid and params["SimSid"] == active_sim.sid
    assert RequestValidator(account.token).validate(got.url, params,
                                                    got.headers["X-Twilio-Signature"])
    [received] = twilio.supersim.v1.sms_commands.list(direction="from_sim")
    assert received.sid == sid and received.status == "received"
    twilio.supersim.v1.sims(active_sim.sid).update(status="inactive")
    server.drain()
    assert device.send_sms(server.runtime, "blocked") is None


def test_sms_command_limits(twilio, fleet, active_sim):
    commands = twilio.supersim.v1.sms_commands
    with pytest.raises(TwilioRestException) as exc:
        commands.create(sim=active_sim.sid, payload="x" * 161)
    assert exc.value.status == 400 and "160" in exc.value.msg
    with pytest.raises(TwilioRestException) as exc:
        commands.create(sim="nope", payload="x")
    assert exc.value.status == 400 and "Sim" in exc.value.msg
    quiet = twilio.supersim.v1.fleets.create(network_access_profile="us-only",
                                             sms_commands_enabled=False)
    twilio.supersim.v1.sims(active_sim.sid).update(fleet=quiet.sid)
    with pytest.raises(TwilioRestException) as exc:
        commands.create(sim=active_sim.sid, payload="x")
    assert "sms_commands_enabled" in exc.value.msg
    assert commands.list() == []


def test_ip_command_round_trip_over_udp(server, account, twilio, fleet, active_sim, device,
                                        receiver):
    twilio.supersim.v1.fleets(fleet.sid).update(ip_commands_url=f"{receiver.url}/ip")
    command = twilio.supersim.v1.ip_commands.create(
        sim="tracker", payload="open sesame", device_port=device.port,
        callback_url=f"{receiver.url}/sent")
    assert command.sid.startswith("HG") and command.status == "queued"
    assert command.device_ip == device.ip and command.payload_type == "text"
    server.drain()
    data, source = device.receive()
    assert data == b"open sesame" and source == udp.address(server.runtime)
    sent = _params(receiver.get())
    assert sent["IpCommandSid"] == command.sid and sent["Status"] == "sent"
    assert twilio.supersim.v1.ip_commands(command.sid).fetch().status == "sent"

    device.send(b"\x00\x01reply", source)  # the device answers the address it heard from
    server.drain()
    got = receiver.get()
    params = _params(got)
    assert got.path == "/ip" and params["Direction"] == "from_sim"
    assert params["PayloadType"] == "binary"
    assert base64.b64decode(params["Payload"]) == b"\x00\x01reply"
    assert params["DeviceIp"] == device.ip and params["DevicePort"] == str(device.port)
    assert RequestValidator(account.token).validate(got.url, params,
                                                    got.headers["X-Twilio-Signature"])
    [received] = twilio.supersim.v1.ip_commands.list(direction="from_sim")
    assert received.status == "received" and received.sim_sid == active_sim.sid
    assert received.sim_iccid == active_sim.iccid and received.device_port == device.port
    assert [c.sid for c in twilio.supersim.v1.ip_commands.list(sim_iccid=active_sim.iccid)] == [
        received.sid, command.sid]


def test_binary_ip_command(server, twilio, active_sim, device):
    payload = base64.b64encode(bytes(range(256)) * 5).decode()
    command = twilio.supersim.v1.ip_commands.create(sim=active_sim.sid, payload=payload,
                                                    payload_type="binary",
                                                    device_port=device.port)
    server.drain()
    data, _source = device.receive()
    assert data == bytes(range(256)) * 5
    assert twilio.supersim.v1.ip_commands(command.sid).fetch().payload == payload


def test_ip_command_limits(twilio, active_sim):
    commands = twilio.supersim.v1.ip_commands
    for kwargs, word in ((dict(payload="x" * 1301, device_port=5), "1300"),
                         (dict(payload="not base64!", payload_type="binary", device_port=5),
                          "base64"),
                         (dict(payload="x", device_port=70000), "DevicePort"),
                         (dict(payload="x", device_port=5, payload_type="hex"), "PayloadType")):
        with pytest.raises(TwilioRestException) as exc:
            commands.create(sim=active_sim.sid, **kwargs)
        assert exc.value.status == 400 and word in exc.value.msg
    assert commands.list() == []


def test_ip_command_waits_for_a_session_then_fails(server, twilio, active_sim, receiver):
    from datetime import timedelta

    command = twilio.supersim.v1.ip_commands.create(sim=active_sim.sid, payload="x",
                                                    device_port=9,
                                                    callback_url=f"{receiver.url}/cb")
    assert command.device_ip is None
    server.drain()
    assert twilio.supersim.v1.ip_commands(command.sid).fetch().status == "queued"
    server.clock.advance(timedelta(hours=24))
    server.drain()
    assert twilio.supersim.v1.ip_commands(command.sid).fetch().status == "failed"
    assert _params(receiver.get())["Status"] == "failed"


def test_datagrams_from_unknown_addresses_are_dropped(server, twilio, active_sim):
    stray = devices.SimulatedDevice()
    try:
        stray.send(b"who am i", udp.address(server.runtime))
        server.drain()
    finally:
        stray.close()
    assert twilio.supersim.v1.ip_commands.list() == []


def test_an_inactive_sim_takes_no_commands(server, twilio, active_sim, device):
    queued = twilio.supersim.v1.sms_commands.create(sim=active_sim.sid, payload="late")
    twilio.supersim.v1.sims(active_sim.sid).update(status="inactive")
    server.drain()
    assert twilio.supersim.v1.sms_commands(queued.sid).fetch().status == "failed"
    assert device.sms == []
    for create in (lambda: twilio.supersim.v1.sms_commands.create(sim=active_sim.sid, payload="x"),
                   lambda: twilio.supersim.v1.ip_commands.create(sim=active_sim.sid, payload="x",
                                                                 device_port=device.port)):
        with pytest.raises(TwilioRestException) as exc:
            create()
        assert exc.value.status == 400 and "inactive" in exc.value.msg
    # Its session is gone: a datagram from its old address is nobody's.
    device.send(b"anyone?", udp.address(server.runtime))
    server.drain()
    assert twilio.supersim.v1.ip_commands.list() == []


def test_five_sms_commands_make_a_ready_sim_active(server, twilio, fleet, registered):
    sims = twilio.supersim.v1.sims
    sims(registered.sid).update(fleet=fleet.sid, status="ready")
    server.drain()
    for i in range(4):
        twilio.supersim.v1.sms_commands.create(sim=registered.sid, payload=f"{i}")
    server.drain()
    assert sims(registered.sid).fetch().status == "ready"
    twilio.supersim.v1.sms_commands.create(sim=registered.sid, payload="4")
    server.drain()
    assert sims(registered.sid).fetch().status == "active"


def test_sms_commands_from_a_ready_sim_count_toward_active(server, twilio, fleet, registered):
    sims = twilio.supersim.v1.sims
    sims(registered.sid).update(fleet=fleet.sid, status="ready")
    server.drain()
    device = devices.SimulatedDevice()
    try:
        device.attach(server.runtime, registered.sid)
        for i in range(4):
            assert device.send_sms(server.runtime, f"{i}") is not None
        server.drain()
        assert sims(registered.sid).fetch().status == "ready"
        device.send_sms(server.runtime, "4")
        server.drain()
        assert sims(registered.sid).fetch().status == "active"
    finally:
        device.close()


def test_an_sms_command_waits_until_the_device_attaches(server, twilio, active_sim):
    command = twilio.supersim.v1.sms_commands.create(sim=active_sim.sid, payload="wake up")
    server.drain()
    assert twilio.supersim.v1.sms_commands(command.sid).fetch().status == "queued"
    device = devices.SimulatedDevice()
    try:
        with pytest.raises(devices.DeviceRefused) as refused:
            device.attach(server.runtime, active_sim.sid, network=("234", "15"))
        assert "83706" in str(refused.value)
        device.attach(server.runtime, active_sim.sid)
        server.drain()
        assert device.sms == ["wake up"]
        assert twilio.supersim.v1.sms_commands(command.sid).fetch().status == "delivered"
        device.detach(server.runtime)
        assert twilio.supersim.v1.sims(active_sim.sid).sim_ip_addresses.list() == []
        later = twilio.supersim.v1.sms_commands.create(sim=active_sim.sid, payload="again")
        server.drain()
        assert twilio.supersim.v1.sms_commands(later.sid).fetch().status == "queued"
    finally:
        device.close()


def test_a_new_sim_cannot_attach(server, registered):
    device = devices.SimulatedDevice()
    try:
        with pytest.raises(devices.DeviceRefused) as refused:
            device.attach(server.runtime, registered.sid)
        assert "83705" in str(refused.value)
    finally:
        device.close()


def test_work_that_must_wait_costs_the_worker_no_write(server, twilio, active_sim, monkeypatch):
    """An IP Command waiting for its SIM's data session, and a settings update waiting for its
    SIM to be ready or active again, are left alone with a read: the worker takes no write
    lock."""
    from sqlalchemy import select

    from simplane.supersim import jobs, service
    from simplane.supersim.models import Sim

    twilio.supersim.v1.ip_commands.create(sim=active_sim.sid, payload="x", device_port=9)
    [row] = stock(server)
    other = twilio.supersim.v1.sims.create(iccid=row["iccid"],
                                           registration_code=row["registration_code"])
    with server.runtime.db.write() as db:  # made active, then inactive before it was pushed
        sim = db.scalar(select(Sim).where(Sim.sid == other.sid))
        service.schedule_settings_update(db, sim, server.clock.now())
    server.drain()
    assert [u.sim_sid for u in twilio.supersim.v1.settings_updates.list(status="scheduled")] == [
        other.sid]
    writes = []
    write = server.runtime.db.write
    monkeypatch.setattr(server.runtime.db, "write",
                        lambda *args, **kwargs: writes.append(args) or write(*args, **kwargs))
    assert not jobs.deliver_ip_commands(server.runtime)
    assert not jobs.apply_settings_updates(server.runtime)
    assert writes == []


def test_ip_commands_go_through_the_simulated_gateway_that_carries_the_session(
        server, account, twilio, active_sim):
    """A session a simulated packet gateway carries (its gateway names a loopback UDP port) is
    reached through that gateway's tunnel; only that gateway may speak for the SIM, and a
    gateway name off loopback (or a real gateway's) is never tunnelled to."""
    import select as io
    import socket

    from sqlalchemy import select

    from simplane.network.events import NetworkEvent
    from simplane.network.ingest import ingest
    from simplane.supersim.models import Sim

    heard = []

    def answer(ip: str, port: int, data: bytes) -> bytes:
        heard.append((ip, port, data))
        return b"pong"

    gateway = udp.SimulatedGateway(answer)
    try:
        with server.runtime.db.read() as db:
            imsi = db.scalar(select(Sim.imsi).where(Sim.sid == active_sim.sid))
        ingest(server.runtime, [NetworkEvent(
            "session.started", imsi, server.clock.now(), session_id="tunnelled", apn="super",
            mcc="310", mnc="410", ip_address="10.64.200.1", gateway=gateway.name)])
        command = twilio.supersim.v1.ip_commands.create(sim=active_sim.sid, payload="ping",
                                                        device_port=6001)
        port = udp.command_port(server.runtime)
        server.drain()
        assert twilio.supersim.v1.ip_commands(command.sid).fetch().status == "sent"
        if not twilio.supersim.v1.ip_commands.list(direction="from_sim"):
            assert io.select([port.sock], [], [], 10)[0]  # the device's answer is on its way
            server.drain()
        assert heard == [("10.64.200.1", 6001, b"ping")]
        [got] = twilio.supersim.v1.ip_commands.list(direction="from_sim")
        assert base64.b64decode(got.payload) == b"pong"
        assert (got.sim_sid, got.device_ip, got.device_port) == (active_sim.sid, "10.64.200.1",
                                                                 6001)

        forger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # not the session's gateway
        forger.bind(("127.0.0.1", 0))
        forger.sendto(udp.wrap("10.64.200.1", 6001, b"forged"), port.address)
        forger.close()
        server.drain()
        assert len(twilio.supersim.v1.ip_commands.list(direction="from_sim")) == 1
    finally:
        gateway.close()
    assert udp.tunnel_endpoint(gateway.name) == ("127.0.0.1",
                                                 int(gateway.name.rpartition(":")[2]))
    for name in ("simulator udp://10.1.2.3:9", "simulator udp://169.254.169.254:80",
                 "simulator udp://127.0.0.1:0", "pgw-9", None):
        assert udp.tunnel_endpoint(name) is None
