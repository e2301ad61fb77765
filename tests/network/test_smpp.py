"""SMS commands through an SMSC (SMPP 3.4): submit_sm to the SIM's MSISDN, delivery receipts,
mobile-originated messages, reconnects and throttling, against an SMSC built on an independent
PDU codec (tests/network/smsc.py)."""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from smpp.pdu import pdu_types as t
from sqlalchemy import func, select

from simplane.network.smpp import SmppLink
from simplane.supersim import inventory as supersim_inventory
from simplane.wireless import inventory, service
from simplane.wireless.models import Command
from tests.network.smsc import Smsc

MSISDN_PREFIX = "4477009"  # UK, Ofcom's drama range


def wait(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll `check` (bounded) until it is true."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError("the condition never held")
        time.sleep(0.02)
    return found


@pytest.fixture
def smsc() -> Iterator[Smsc]:
    smsc = Smsc(receipts=None)
    yield smsc
    smsc.close()


@pytest.fixture
def link(server, smsc) -> Iterator[SmppLink]:  # type: ignore[no-untyped-def]
    server.runtime.settings.smpp = f"127.0.0.1:{smsc.port}"
    link = SmppLink(server.runtime, "127.0.0.1", smsc.port, "simplane", "secret",
                    source_addr="447700900000", window=32, throttle_pause=0.2,
                    backoff=(0.01, 0.05), poll=0.02).start()
    assert link.bound.wait(10)
    yield link
    link.stop()
    server.runtime.settings.smpp = None


def wireless_sim(server, account, callback: str | None = None) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """An active Wireless SIM with an MSISDN: (sid, msisdn)."""
    account.client.wireless.v1.rate_plans.create(unique_name="sms")
    with server.runtime.db.write() as db:
        plan = inventory.resolve_rate_plan(db, account.sid, "sms")
        [sid] = inventory.add_sims(db, account.sid, inventory.generated_rows(1, "active"),
                                   server.clock.now(), plan, msisdn_prefix=MSISDN_PREFIX)
    if callback:
        account.client.wireless.v1.sims(sid).update(commands_callback_url=callback)
    return sid, msisdn_of(server, sid)


def msisdn_of(server, sid: str) -> str:  # type: ignore[no-untyped-def]
    from simplane.supersim.models import Sim as SuperSim
    from simplane.wireless.models import Sim

    model = Sim if sid.startswith("DE") else SuperSim
    with server.runtime.db.read() as db:
        return db.scalar(select(model.msisdn).where(model.sid == sid))


def super_sim(server, account, sms_url: str | None = None) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """An active Super SIM in a Fleet with SMS Commands on, with an MSISDN: (sid, msisdn)."""
    twilio = account.client
    with server.runtime.db.write() as db:
        [row] = supersim_inventory.add_sims(db, supersim_inventory.generated_rows(1),
                                            server.clock.now(), msisdn_prefix=MSISDN_PREFIX)
    twilio.supersim.v1.network_access_profiles.create(unique_name="nap")
    twilio.supersim.v1.fleets.create(network_access_profile="nap", unique_name="fleet",
                                     sms_commands_url=sms_url)
    sim = twilio.supersim.v1.sims.create(iccid=row["iccid"],
                                         registration_code=row["registration_code"])
    twilio.supersim.v1.sims(sim.sid).update(fleet="fleet", status="active")
    server.drain()
    assert twilio.supersim.v1.sims(sim.sid).fetch().status == "active"
    return sim.sid, row["msisdn"]


def test_wireless_text_and_binary_commands_go_out_and_their_receipts_finish_them(
        server, account, receiver, smsc, link):
    sid, msisdn = wireless_sim(server, account)
    commands = account.client.wireless.v1.commands
    gsm = commands.create(sim=sid, command="wake {€}", callback_url=receiver.url)
    ucs2 = commands.create(sim=sid, command="température 温度", callback_url=receiver.url)
    raw = bytes([0x00, 0x7F, 0x80, 0xFF])
    binary = commands.create(sim=sid, command=base64.b64encode(raw).decode(),
                             command_mode="binary", callback_url=receiver.url)
    smsc.wait_for(lambda: len(smsc.submitted) == 3)
    got = {item.message: item for item in smsc.submitted}
    # GSM 03.38 (data_coding 0, one octet a septet, € and braces from the extension table),
    # UCS-2 (8) where a character is not in it, 8-bit data (4) for binary; receipts asked for.
    assert got[b"wake \x1b(\x1be\x1b)"].data_coding == 0
    assert got["température 温度".encode("utf-16-be")].data_coding == 8
    assert got[raw].data_coding == 4
    assert {item.destination for item in smsc.submitted} == {msisdn}
    assert all(item.receipt for item in smsc.submitted)
    wait(lambda: all(commands(c.sid).fetch().status == "sent" for c in (gsm, ucs2, binary)))

    by_message = {item.message: item for item in smsc.submitted}
    smsc.receipt(by_message[b"wake \x1b(\x1be\x1b)"], "DELIVRD")
    smsc.receipt(by_message[raw], "DELIVRD")
    smsc.receipt(by_message["température 温度".encode("utf-16-be")], "UNDELIV")
    smsc.wait_for(lambda: len(smsc.answers) == 3)
    assert set(smsc.answers.values()) == {t.CommandStatus.ESME_ROK}
    assert commands(gsm.sid).fetch().status == "delivered"
    assert commands(binary.sid).fetch().status == "delivered"
    assert commands(ucs2.sid).fetch().status == "failed"
    server.drain()
    finals = {}
    for _ in range(3):
        form = receiver.get().form
        finals[form["CommandSid"][0]] = form["CommandStatus"][0]
    assert finals == {gsm.sid: "delivered", binary.sid: "delivered", ucs2.sid: "failed"}


def test_a_command_to_a_sim_without_an_msisdn_fails(server, account, receiver, smsc, link):
    account.client.wireless.v1.rate_plans.create(unique_name="p")
    [sid] = server.provision(account.sid, 1, status="active", rate_plan="p")
    server.network(sid, "attachment.accepted")  # attached: the simulated gateway would deliver
    command = account.client.wireless.v1.commands.create(sim=sid, command="x",
                                                         callback_url=receiver.url)
    server.drain()
    assert receiver.get().form["CommandStatus"] == ["failed"]
    assert account.client.wireless.v1.commands(command.sid).fetch().status == "failed"
    assert smsc.submitted == []


def test_super_sim_sms_commands_go_out_and_their_receipts_finish_them(
        server, account, receiver, smsc, link):
    sid, msisdn = super_sim(server, account)
    sms = account.client.supersim.v1.sms_commands
    command = sms.create(sim=sid, payload="hello ÿ", callback_url=receiver.url)
    [item] = smsc.wait_for(lambda: smsc.submitted)
    assert (item.destination, item.data_coding, item.receipt) == (msisdn, 8, True)
    assert item.message == "hello ÿ".encode("utf-16-be")  # ÿ is not in the GSM alphabet
    wait(lambda: sms(command.sid).fetch().status == "sent")
    smsc.receipt(item, "DELIVRD")
    wait(lambda: sms(command.sid).fetch().status == "delivered")
    server.drain()
    statuses = [receiver.get().form["Status"][0] for _ in range(2)]
    assert statuses == ["sent", "delivered"]  # a Super SIM's callback hears every status
    # Longer than one UCS-2 SMS (70 characters): in message_payload, for the SMSC to split.
    long = sms.create(sim=sid, payload="ł" * 160)
    smsc.wait_for(lambda: len(smsc.submitted) == 2)
    assert smsc.submitted[1].in_payload and not smsc.submitted[0].in_payload
    assert smsc.submitted[1].message == ("ł" * 160).encode("utf-16-be")
    smsc.receipt(smsc.submitted[1], "EXPIRED")
    wait(lambda: sms(long.sid).fetch().status == "failed")


def test_a_message_from_a_sims_msisdn_is_a_command_from_the_sim(server, account, receiver,
                                                                smsc, link):
    sid, msisdn = wireless_sim(server, account, callback=receiver.url)
    seq = smsc.mobile_originated(msisdn, b"reading=42 \x1b\x3c")  # GSM: "[" from the extension
    smsc.wait_for(lambda: seq in smsc.answers)
    assert smsc.answers[seq] == t.CommandStatus.ESME_ROK
    server.drain()
    form = receiver.get().form
    assert (form["SimSid"], form["Direction"], form["Command"], form["CommandMode"]) == (
        [sid], ["from_sim"], ["reading=42 ["], ["text"])
    binary = smsc.mobile_originated(msisdn, b"\x01\x02\xff",
                                    t.DataCodingDefault.OCTET_UNSPECIFIED_COMMON)
    smsc.wait_for(lambda: binary in smsc.answers)
    server.drain()
    form = receiver.get().form
    assert (form["Command"], form["CommandMode"]) == (["AQL/"], ["binary"])

    super_sid, super_msisdn = super_sim(server, account, sms_url=receiver.url)
    seq = smsc.mobile_originated(super_msisdn, "ça va".encode("utf-16-be"),
                                 t.DataCodingDefault.UCS2)
    smsc.wait_for(lambda: seq in smsc.answers)
    server.drain()
    form = receiver.get().form
    assert (form["SimSid"], form["Direction"], form["Payload"]) == (
        [super_sid], ["from_sim"], ["ça va"])

    stranger = smsc.mobile_originated("15005550006", b"who am I")
    smsc.wait_for(lambda: stranger in smsc.answers)
    assert smsc.answers[stranger] == t.CommandStatus.ESME_RINVSRCADR


def test_an_smsc_dropped_ten_times_loses_and_repeats_no_command(server, account, smsc, link):
    smsc.receipts = "DELIVRD"
    smsc.drop_every, smsc.drops_left = 97, 10
    sid, _msisdn = wireless_sim(server, account)
    total = 1000
    for start in range(0, total, 250):  # a stream: queued while the link submits and drops
        with server.runtime.db.write() as db:
            for i in range(start, start + 250):
                service.create_command(db, server.runtime, account.sid,
                                       {"Sim": sid, "Command": f"command {i}"})
        link.wake()

    def delivered() -> bool:
        with server.runtime.db.read() as db:
            return db.scalar(select(func.count()).select_from(Command).where(
                Command.account_sid == account.sid, Command.status == "delivered")) == total

    smsc.wait_for(delivered, timeout=120)
    assert smsc.drops == 10 and smsc.binds == 11
    sent = Counter(item.message for item in smsc.submitted)
    assert len(sent) == total and set(sent.values()) == {1}  # each accepted exactly once
    assert set(sent) == {f"command {i}".encode() for i in range(total)}


def metric(server, line: str) -> float:  # type: ignore[no-untyped-def]
    for row in server.metrics().splitlines():
        if row.startswith(line + " "):
            return float(row.split()[-1])
    return 0.0


def test_throttling_pauses_submission_and_submits_again(server, account, smsc, link):
    throttled = 'simplane_smpp_submits_total{outcome="throttled"}'
    before = metric(server, throttled)
    smsc.receipts = "DELIVRD"
    smsc.throttle = 5
    sid, _msisdn = wireless_sim(server, account)
    commands = [account.client.wireless.v1.commands.create(sim=sid, command=f"c{i}")
                for i in range(20)]
    wait(lambda: all(account.client.wireless.v1.commands(c.sid).fetch().status == "delivered"
                     for c in commands))
    assert link.throttled == 5 and len(smsc.throttled) == 5
    assert metric(server, throttled) == before + 5
    assert metric(server, "simplane_smpp_bound") == 1
    accepted = {item.message: item for item in smsc.submitted}
    assert len(smsc.submitted) == len(accepted) == 20
    for message, throttled_at in smsc.throttled:  # submitted again, once the pause was over
        assert accepted[message].at >= throttled_at + link.throttle_pause


def test_a_restart_while_commands_stream_loses_and_repeats_none(server, account, smsc, link):
    smsc.receipts = "DELIVRD"
    sid, _msisdn = wireless_sim(server, account)
    total = 300
    with server.runtime.db.write() as db:
        for i in range(total):
            service.create_command(db, server.runtime, account.sid,
                                   {"Sim": sid, "Command": f"command {i}"})
    link.wake()
    smsc.wait_for(lambda: len(smsc.submitted) >= 50)
    link.stop()  # waits for the SMSC's answers to what it submitted, and stores them
    stopped_at = len(smsc.submitted)
    assert stopped_at < total
    again = SmppLink(server.runtime, "127.0.0.1", smsc.port, "simplane", "secret",
                     window=32, poll=0.02).start()
    try:
        def delivered() -> bool:
            with server.runtime.db.read() as db:
                return db.scalar(select(func.count()).select_from(Command).where(
                    Command.account_sid == account.sid, Command.status == "delivered")) == total

        smsc.wait_for(delivered, timeout=60)
    finally:
        again.stop()
    sent = Counter(item.message for item in smsc.submitted)
    assert len(sent) == total and set(sent.values()) == {1}
    assert smsc.binds == 2


def test_a_quiet_bind_is_kept_alive_and_a_silent_smsc_is_left_for_a_new_bind(server, smsc):
    link = SmppLink(server.runtime, "127.0.0.1", smsc.port, "simplane", "secret",
                    enquire_interval=0.05, response_timeout=0.5, backoff=(0.01, 0.05)).start()
    try:
        smsc.wait_for(lambda: smsc.enquiries >= 3)  # enquire_link while nothing else is said
        assert smsc.binds == 1
        smsc.silent = True  # it stops answering: no enquire_link_resp, so the link connects anew
        smsc.wait_for(lambda: smsc.connections >= 3)  # (and gives up binds left unanswered)
        assert smsc.binds == 1
        smsc.silent = False
        smsc.wait_for(lambda: smsc.binds == 2)
    finally:
        link.stop()


def test_a_refused_bind_is_tried_again_with_backoff(server, smsc):
    smsc.password = "changed"
    link = SmppLink(server.runtime, "127.0.0.1", smsc.port, "simplane", "secret",
                    backoff=(0.01, 0.05)).start()
    try:
        attempts = smsc.wait_for(lambda: smsc.bind_attempts >= 3 and smsc.bind_attempts)
        assert smsc.binds == 0 and not link.bound.is_set() and attempts >= 3
        smsc.password = "secret"
        smsc.wait_for(lambda: smsc.binds == 1)
        assert link.bound.wait(10)
    finally:
        link.stop()


def test_serve_smpp_binds_and_sends_commands_through_the_smsc(server, account, smsc, tmp_path):
    """`simplane serve --smpp` as an operator runs it, on the same database."""
    import os
    import subprocess
    import sys

    import httpx

    import simplane
    from tests.support import free_port

    sid, msisdn = wireless_sim(server, account)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMPLANE_")}
    env.update(SIMPLANE_SECRET_KEY=server.runtime.settings.secret_key,
               SIMPLANE_SMPP_PASSWORD="secret")
    proc = subprocess.Popen(
        [sys.executable, "-m", "simplane.cli", "serve", "--database-url",
         server.runtime.settings.database_url, "--port", str(port), "--log-level", "warning",
         "--smpp", f"127.0.0.1:{smsc.port}", "--smpp-system-id", "simplane",
         "--smpp-source-addr", "447700900000"], env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                return False

        wait(up, timeout=60)
        smsc.wait_for(lambda: smsc.binds == 1)
        client = simplane.client(f"http://127.0.0.1:{port}", account.sid, account.token)
        command = client.wireless.v1.commands.create(sim=sid, command="over the air")
        [item] = smsc.wait_for(lambda: smsc.submitted)
        assert (item.destination, item.message) == (msisdn, b"over the air")
        smsc.receipt(item, "DELIVRD")
        wait(lambda: client.wireless.v1.commands(command.sid).fetch().status == "delivered")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
