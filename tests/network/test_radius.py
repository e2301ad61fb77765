"""RADIUS accounting from a packet gateway, over real loopback UDP, into the one ingest path."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
from datetime import timedelta

import pytest
from pyrad import packet as radius_packet
from pyrad.client import Client as RadiusClient
from pyrad.client import Timeout
from sqlalchemy import select

from simplane.core.metrics import REGISTRY
from simplane.network import radius
from simplane.network.models import DataSession
from simplane.network.radius import RadiusServer
from simplane.wireless.models import Sim

SECRET = "testing123"
RADCLIENT = shutil.which("radclient")
REQUIRE_RADCLIENT = os.environ.get("REQUIRE_POSTGRES") == "1"  # the CI run, which installs it


def packets(outcome: str) -> float:
    return REGISTRY.get_sample_value("simplane_radius_packets_total", {"outcome": outcome}) or 0.0


@pytest.fixture
def gateway(server):
    """A RADIUS accounting listener on a free loopback port, ingesting into the test server."""
    srv = RadiusServer(server.runtime, SECRET, host="127.0.0.1", port=0).start()
    yield srv
    srv.stop()


@pytest.fixture
def sim(server, account):
    account.client.wireless.v1.rate_plans.create(unique_name="p", international_roaming=["data"],
                                                 data_limit=100_000)
    [sid] = server.provision(account.sid, 1, status="active", rate_plan="p")
    with server.runtime.db.read() as db:
        imsi = db.scalar(select(Sim.imsi).where(Sim.sid == sid))
    return sid, imsi


def pyrad_client(gateway: RadiusServer, secret: str = SECRET) -> RadiusClient:
    client = RadiusClient(server="127.0.0.1", acctport=gateway.port, secret=secret.encode(),
                          dict=radius.dictionary())
    client.timeout = 2
    client.retries = 1
    return client


def request(client: RadiusClient, **attrs) -> radius_packet.AcctPacket:  # type: ignore[no-untyped-def]
    pkt = client.CreateAcctPacket()
    for name, value in attrs.items():
        pkt[name.replace("_", "-")] = value
    return pkt


def radclient(gateway: RadiusServer, attributes: dict[str, object], secret: str = SECRET
              ) -> subprocess.CompletedProcess:
    line = ", ".join(f"{k} = {v}" for k, v in attributes.items())
    return subprocess.run(
        [RADCLIENT or "radclient", "-x", "-t", "1", "-r", "1",
         f"127.0.0.1:{gateway.port}", "acct", secret],
        input=line + "\n", capture_output=True, text=True, timeout=30, check=False)


def break_on(monkeypatch, name: str, trips):  # type: ignore[no-untyped-def]
    """Make radius.<name> raise whenever `trips(*its arguments)` holds (a bug, or a database
    refusing); returns the real one."""
    real = getattr(radius, name)

    def broken(*args):  # type: ignore[no-untyped-def]
        if trips(*args):
            raise RuntimeError(f"{name} broke")
        return real(*args)

    monkeypatch.setattr(radius, name, broken)
    return real


def need_radclient() -> None:
    if RADCLIENT is None:
        if REQUIRE_RADCLIENT:
            pytest.fail("radclient is required (REQUIRE_POSTGRES=1): apt-get install "
                        "freeradius-utils")
        pytest.skip("radclient is not installed (apt-get install freeradius-utils)")


def window(server):  # type: ignore[no-untyped-def]
    now = server.clock.now()
    return {"start": now - timedelta(hours=1), "end": now + timedelta(hours=2)}


def tbcd_plmn(mcc: str, mnc: str) -> bytes:
    mnc3 = int(mnc[2]) if len(mnc) == 3 else 0xF
    return bytes([int(mcc[1]) << 4 | int(mcc[0]), mnc3 << 4 | int(mcc[2]),
                  int(mnc[1]) << 4 | int(mnc[0])])


def test_radclient_start_interim_stop_becomes_a_data_session_and_usage(server, account, sim,
                                                                        gateway):
    need_radclient()
    sid, imsi = sim
    uli = bytes([130]) + tbcd_plmn("234", "15") + (0x1234).to_bytes(2, "big") \
        + tbcd_plmn("234", "15") + (0x0ABCDEF).to_bytes(4, "big")
    common = {
        "User-Name": f'"{imsi}"', "Acct-Session-Id": '"gw-1"', "3GPP-IMSI": f'"{imsi}"',
        "Called-Station-Id": '"iot.example"', "Calling-Station-Id": '"447700900123"',
        "Framed-IP-Address": "10.64.0.7", "3GPP-IMEISV": '"4901542032375101"',
        "3GPP-SGSN-MCC-MNC": '"23415"', "3GPP-RAT-Type": "6",
        "3GPP-User-Location-Info": "0x" + uli.hex(),
    }
    accepted = packets("accepted")
    started = radclient(gateway, {**common, "Acct-Status-Type": "Start"})
    assert started.returncode == 0, started.stdout + started.stderr
    assert "Accounting-Response" in started.stdout
    interim = radclient(gateway, {**common, "Acct-Status-Type": "Interim-Update",
                                  "Acct-Input-Octets": 1000, "Acct-Output-Octets": 5000,
                                  "Acct-Input-Packets": 10, "Acct-Output-Packets": 20})
    assert interim.returncode == 0, interim.stdout + interim.stderr
    stop = radclient(gateway, {**common, "Acct-Status-Type": "Stop",
                               "Acct-Input-Gigawords": 1, "Acct-Input-Octets": 5,
                               "Acct-Output-Octets": 7000, "Acct-Input-Packets": 11,
                               "Acct-Output-Packets": 25})
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert packets("accepted") == accepted + 3

    [session] = account.client.wireless.v1.sims(sid).data_sessions.list()
    assert session.radio_link == "LTE" and session.imei == "490154203237518"
    assert (session.operator_mcc, session.operator_mnc) == ("234", "15")
    assert session.operator_country == "GB"
    assert session.cell_id == str(0x0ABCDEF)
    assert (session.packets_uploaded, session.packets_downloaded) == (11, 25)
    assert session.end is not None
    [record] = account.client.wireless.v1.sims(sid).usage_records.list(**window(server))
    assert record.data["upload"] == 2**32 + 5 and record.data["download"] == 7000
    assert record.data["total"] == 2**32 + 5 + 7000


def test_radclient_with_a_bad_secret_gets_no_answer_and_is_counted(server, account, sim,
                                                                     gateway):
    need_radclient()
    sid, imsi = sim
    bad = packets("bad_authenticator")
    done = radclient(gateway, {"Acct-Status-Type": "Start", "Acct-Session-Id": '"x"',
                               "3GPP-IMSI": f'"{imsi}"', "Acct-Input-Octets": 100},
                     secret="wrong-secret")
    assert done.returncode != 0 and "Accounting-Response" not in done.stdout
    assert packets("bad_authenticator") >= bad + 1
    assert account.client.wireless.v1.sims(sid).data_sessions.list() == []


def test_pyrad_peer_with_gigawords_timestamps_and_retransmissions(server, account, sim, gateway):
    sid, imsi = sim
    client = pyrad_client(gateway)
    stamp = int(server.clock.now().timestamp()) + 60
    base = {"Acct-Session-Id": "pgw-7", "3GPP-IMSI": imsi, "Called-Station-Id": "m2m",
            "3GPP-SGSN-MCC-MNC": "90142", "3GPP-RAT-Type": bytes([8]),
            "Framed-IP-Address": "10.0.0.9"}
    reply = client.SendPacket(request(client, Acct_Status_Type="Start", Event_Timestamp=stamp,
                                      **base))
    assert reply.code == radius_packet.AccountingResponse

    # The same datagram twice (a retransmission): both answered alike, counted once.
    interim = request(client, Acct_Status_Type="Interim-Update", Event_Timestamp=stamp + 300,
                      Acct_Input_Octets=5, Acct_Input_Gigawords=1, Acct_Output_Octets=900,
                      Acct_Output_Gigawords=0, **base)
    raw = interim.RequestPacket()
    duplicates = packets("duplicate")
    answers = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        for _ in range(2):
            sock.sendto(raw, ("127.0.0.1", gateway.port))
            answers.append(sock.recv(4096))
    assert answers[0] == answers[1]
    assert interim.VerifyReply(interim.CreateReply(packet=answers[0]), answers[0])
    assert packets("duplicate") == duplicates + 1
    # A repeat with a new id (a gateway resending the same counters) adds nothing either.
    again = request(client, Acct_Status_Type="Interim-Update", Event_Timestamp=stamp + 300,
                    Acct_Input_Octets=5, Acct_Input_Gigawords=1, Acct_Output_Octets=900, **base)
    assert client.SendPacket(again).code == radius_packet.AccountingResponse

    [record] = account.client.wireless.v1.sims(sid).usage_records.list(**window(server))
    assert record.data["upload"] == 2**32 + 5 and record.data["download"] == 900
    assert record.data["home"]["total"] == 2**32 + 905
    [session] = account.client.wireless.v1.sims(sid).data_sessions.list()
    assert session.radio_link == "NB-IoT" and session.end is None
    assert int(session.start.timestamp()) == stamp
    assert int(session.last_updated.timestamp()) == stamp + 300

    reply = client.SendPacket(request(client, Acct_Status_Type="Stop",
                                      Event_Timestamp=stamp + 600, Acct_Input_Octets=10,
                                      Acct_Input_Gigawords=1, Acct_Output_Octets=1000, **base))
    assert reply.code == radius_packet.AccountingResponse
    [session] = account.client.wireless.v1.sims(sid).data_sessions.list()
    assert session.end is not None and int(session.end.timestamp()) == stamp + 600
    [record] = account.client.wireless.v1.sims(sid).usage_records.list(**window(server))
    assert record.data["total"] == 2**32 + 1010


def test_unknown_imsi_and_bad_secret_are_dropped_unanswered(server, account, sim, gateway):
    sid, imsi = sim
    unknown, bad = packets("unknown_imsi"), packets("bad_authenticator")
    client = pyrad_client(gateway)
    with pytest.raises(Timeout):
        client.SendPacket(request(client, Acct_Status_Type="Start", Acct_Session_Id="u",
                                  **{"3GPP-IMSI": "001019999999999"}))
    assert packets("unknown_imsi") == unknown + client.retries  # each try counted
    wrong = pyrad_client(gateway, secret="not-the-secret")
    with pytest.raises(Timeout):
        wrong.SendPacket(request(wrong, Acct_Status_Type="Start", Acct_Session_Id="b",
                                 Acct_Input_Octets=100, **{"3GPP-IMSI": imsi}))
    assert packets("bad_authenticator") == bad + wrong.retries
    assert account.client.wireless.v1.sims(sid).data_sessions.list() == []
    malformed = packets("malformed")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"\x04\x01\x00", ("127.0.0.1", gateway.port))
    # Accounting-On (a gateway restarting) is answered and ingests nothing.
    assert client.SendPacket(request(client, Acct_Status_Type="Accounting-On")).code == \
        radius_packet.AccountingResponse
    assert packets("malformed") == malformed + 1


def test_attribute_decoding():
    assert radius.imei_from_imeisv("4901542032375101") == "490154203237518"
    assert radius.imei_from_imeisv("490154203237518") == "490154203237518"
    assert radius.imei_from_imeisv("abc") == "abc"
    assert [radius.rat_type(bytes([v])) for v in (1, 2, 6, 8, 9, 10, 3)] == \
        ["3G", "2G", "LTE", "NB-IoT", "LTE-M", "5G", None]
    cgi = bytes([0]) + tbcd_plmn("310", "410") + (0x00FF).to_bytes(2, "big") \
        + (0x1A2B).to_bytes(2, "big")
    assert radius.user_location(cgi) == {"mcc": "310", "mnc": "410", "lac": "255",
                                         "cell_id": str(0x1A2B)}
    ecgi = bytes([129]) + tbcd_plmn("262", "01") + (0x1234567).to_bytes(4, "big")
    assert radius.user_location(ecgi) == {"mcc": "262", "mnc": "01", "cell_id": str(0x1234567)}
    assert radius.user_location(b"\x99garbage") == {}
    assert radius.user_location(b"\x00") == {}


def test_copies_of_an_unknown_imsi_datagram_in_one_batch_are_all_dropped(server, account, sim,
                                                                          gateway):
    client = pyrad_client(gateway)
    raw = request(client, Acct_Status_Type="Start", Acct_Session_Id="u",
                  **{"3GPP-IMSI": "001019999999999"}).RequestPacket()
    peer = ("127.0.0.1", 40001)
    unknown, accepted = packets("unknown_imsi"), packets("accepted")
    assert gateway.handle([(raw, peer), (raw, peer)]) == []
    # Nothing was remembered to answer a later retransmission with either.
    assert gateway.handle([(raw, peer)]) == []
    assert packets("unknown_imsi") == unknown + 3
    assert packets("accepted") == accepted


def test_a_batch_that_cannot_be_ingested_is_ingested_one_by_one(server, account, sim, gateway,
                                                                 monkeypatch):
    sid, imsi = sim
    real = break_on(monkeypatch, "ingest",
                    lambda _runtime, events: any(e.session_id == "poison" for e in events))
    client = pyrad_client(gateway)
    good = request(client, Acct_Status_Type="Start", Acct_Session_Id="fine",
                   **{"3GPP-IMSI": imsi})
    bad = request(client, Acct_Status_Type="Start", Acct_Session_Id="poison",
                  **{"3GPP-IMSI": imsi})
    good_raw, bad_raw = good.RequestPacket(), bad.RequestPacket()
    peer = ("127.0.0.1", 40002)
    error, accepted = packets("error"), packets("accepted")
    [(to, reply)] = gateway.handle([(bad_raw, peer), (good_raw, peer), (bad_raw, peer)])
    assert to == peer and good.VerifyReply(good.CreateReply(packet=reply), reply)
    assert packets("accepted") == accepted + 1
    assert packets("error") == error + 2  # both copies of the one that failed
    assert len(account.client.wireless.v1.sims(sid).data_sessions.list()) == 1
    # Its retransmission fails alone, and once ingest can store it, it is answered.
    assert gateway.handle([(bad_raw, peer)]) == []
    assert packets("error") == error + 3
    monkeypatch.setattr(radius, "ingest", real)
    [(to, reply)] = gateway.handle([(bad_raw, peer)])
    assert bad.VerifyReply(bad.CreateReply(packet=reply), reply)
    assert len(account.client.wireless.v1.sims(sid).data_sessions.list()) == 2


def test_fields_longer_than_their_columns_are_dropped_as_malformed(server, account, sim, gateway):
    sid, imsi = sim
    client = pyrad_client(gateway)
    peer = ("127.0.0.1", 40003)
    garbled = bytes([129]) + b"\xff\xff\xff" + (0x1234567).to_bytes(4, "big")  # not TBCD digits
    malformed = packets("malformed")
    for attrs in ({"Acct_Session_Id": "s" * 129},
                  {"Acct_Session_Id": "s", "Called_Station_Id": "a" * 65},
                  {"Acct_Session_Id": "s", "3GPP_IMEISV": "I" * 17},
                  {"Acct_Session_Id": "s", "3GPP_User_Location_Info": garbled}):
        raw = request(client, Acct_Status_Type="Start", **{"3GPP-IMSI": imsi},
                      **attrs).RequestPacket()
        assert gateway.handle([(raw, peer)]) == [], attrs
    assert packets("malformed") == malformed + 4
    assert account.client.wireless.v1.sims(sid).data_sessions.list() == []
    # As long as the columns hold is fine.
    longest = request(client, Acct_Status_Type="Start", Acct_Session_Id="s" * 128,
                      Called_Station_Id="a" * 64, **{"3GPP-IMSI": imsi, "3GPP-IMEISV": "I" * 16})
    assert len(gateway.handle([(longest.RequestPacket(), peer)])) == 1
    [session] = account.client.wireless.v1.sims(sid).data_sessions.list()
    assert session.imei == "I" * 16


def test_text_with_a_nul_inside_is_dropped_as_malformed(server, account, sim, gateway):
    sid, imsi = sim
    client = pyrad_client(gateway)
    peer = ("127.0.0.1", 40004)
    malformed = packets("malformed")
    broken = [{"Acct_Session_Id": "pgw\x00-1", "3GPP_IMSI": imsi},
              {"Acct_Session_Id": "s", "3GPP_IMSI": imsi[:5] + "\x00" + imsi[5:]},
              {"Acct_Session_Id": "s", "User_Name": imsi[:5] + "\x00" + imsi[5:]},
              {"Acct_Session_Id": "s", "3GPP_IMSI": imsi, "3GPP_IMEISV": "49015420\x0032375101"},
              {"Acct_Session_Id": "s", "3GPP_IMSI": imsi, "Called_Station_Id": "m2m\x00x"},
              {"Acct_Session_Id": "s", "3GPP_IMSI": imsi, "3GPP_SGSN_MCC_MNC": "901\x0042"}]
    # Not a field of the event, so not read: a NUL in it is no matter.
    good = request(client, Acct_Status_Type="Start", Acct_Session_Id="fine\x00\x00",
                   Calling_Station_Id="+1415\x005550111", **{"3GPP-IMSI": imsi})
    batch = [(request(client, Acct_Status_Type="Start", **attrs).RequestPacket(), peer)
             for attrs in broken]
    [(to, reply)] = gateway.handle([*batch, (good.RequestPacket(), peer)])
    assert to == peer and good.VerifyReply(good.CreateReply(packet=reply), reply)
    assert packets("malformed") == malformed + len(broken)
    [session] = account.client.wireless.v1.sims(sid).data_sessions.list()
    assert session.imei is None and session.cell_id is None

    # Over the wire alike: the broken one is never answered, the next one is.
    stop = request(client, Acct_Status_Type="Stop", Acct_Session_Id="fine", Acct_Input_Octets=7,
                   **{"3GPP-IMSI": imsi})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(batch[0][0], ("127.0.0.1", gateway.port))
        sock.sendto(stop.RequestPacket(), ("127.0.0.1", gateway.port))
        answer = sock.recv(4096)
    assert stop.VerifyReply(stop.CreateReply(packet=answer), answer)
    assert packets("malformed") == malformed + len(broken) + 1
    [session] = account.client.wireless.v1.sims(sid).data_sessions.list()
    assert session.end is not None
    [record] = account.client.wireless.v1.sims(sid).usage_records.list(**window(server))
    assert record.data["upload"] == 7


def test_without_event_timestamp_the_event_is_as_old_as_acct_delay_time(server, account, sim,
                                                                          gateway):
    sid, imsi = sim
    server.clock.advance(timedelta(hours=1))
    client = pyrad_client(gateway)
    now = server.clock.now()
    # A gateway that buffered its Start for ten minutes says so in Acct-Delay-Time (RFC 2866
    # section 5.2): the session started then, not when the request arrived.
    started = request(client, Acct_Status_Type="Start", Acct_Session_Id="late",
                      Acct_Delay_Time=600, **{"3GPP-IMSI": imsi})
    assert client.SendPacket(started).code == radius_packet.AccountingResponse
    [session] = account.client.wireless.v1.sims(sid).data_sessions.list()
    assert session.start == now - timedelta(seconds=600)
    # Event-Timestamp is the time of the event itself: Acct-Delay-Time is not taken off it.
    stamp = int(now.timestamp()) - 60
    stop = request(client, Acct_Status_Type="Stop", Acct_Session_Id="late", Acct_Delay_Time=30,
                   Event_Timestamp=stamp, **{"3GPP-IMSI": imsi})
    assert client.SendPacket(stop).code == radius_packet.AccountingResponse
    [session] = account.client.wireless.v1.sims(sid).data_sessions.list()
    assert int(session.end.timestamp()) == stamp


def resign(data: bytes, secret: str = SECRET) -> bytes:
    """`data` with its Length and Request Authenticator (RFC 2866 section 3) made right."""
    head = data[:1] + data[1:2] + len(data).to_bytes(2, "big")
    return head + hashlib.md5(head + bytes(16) + data[20:] + secret.encode()).digest() + data[20:]


def test_an_attribute_running_past_the_end_of_the_packet_is_malformed(server, account, sim,
                                                                       gateway):
    sid, imsi = sim
    client = pyrad_client(gateway)
    peer = ("127.0.0.1", 40005)
    raw = request(client, Acct_Status_Type="Start", Acct_Session_Id="s",
                  **{"3GPP-IMSI": imsi}).RequestPacket()
    # Called-Station-Id says 20 octets long, but the packet ends 5 octets into its value.
    broken = resign(raw + bytes([30, 20]) + b"iot.e")
    malformed = packets("malformed")
    assert gateway.handle([(broken, peer)]) == []
    assert packets("malformed") == malformed + 1
    assert account.client.wireless.v1.sims(sid).data_sessions.list() == []
    # The same attribute whole is fine.
    whole = resign(raw + bytes([30, 7]) + b"iot.e")
    assert len(gateway.handle([(whole, peer)])) == 1
    with server.runtime.db.read() as db:
        assert db.scalars(select(DataSession.apn).where(DataSession.sim_sid == sid)).all() == \
            ["iot.e"]


def test_other_acct_status_types_of_rfc_2866_are_answered_and_ignored(server, account, sim,
                                                                       gateway):
    sid, imsi = sim
    client = pyrad_client(gateway)
    ignored, malformed = packets("ignored"), packets("malformed")
    # 9 to 14 are tunnel accounting (RFC 2867), 15 is Failed: well formed, nothing to record,
    # and unanswered the gateway would retransmit them for nothing.
    for status in range(9, 16):
        pkt = request(client, Acct_Status_Type=status, Acct_Session_Id=f"t{status}",
                      **{"3GPP-IMSI": imsi})
        reply = client.SendPacket(pkt)
        assert reply.code == radius_packet.AccountingResponse, status
    assert packets("ignored") == ignored + 7
    assert account.client.wireless.v1.sims(sid).data_sessions.list() == []
    # A value RFC 2866 does not define is malformed.
    peer = ("127.0.0.1", 40006)
    for status in (0, 4, 16):
        raw = request(client, Acct_Status_Type=status, Acct_Session_Id="x",
                      **{"3GPP-IMSI": imsi}).RequestPacket()
        assert gateway.handle([(raw, peer)]) == [], status
    assert packets("malformed") == malformed + 3


def test_a_packet_that_trips_a_bug_is_left_unanswered_and_the_listener_goes_on(
        server, account, sim, gateway, monkeypatch):
    sid, imsi = sim
    break_on(monkeypatch, "to_event", lambda pkt, _now: pkt["Acct-Session-Id"][0] == "trips")
    client = pyrad_client(gateway)
    trips = request(client, Acct_Status_Type="Start", Acct_Session_Id="trips",
                    **{"3GPP-IMSI": imsi})
    fine = request(client, Acct_Status_Type="Start", Acct_Session_Id="fine",
                   **{"3GPP-IMSI": imsi})
    peer = ("127.0.0.1", 40003)
    error = packets("error")
    [(_to, reply)] = gateway.handle([(trips.RequestPacket(), peer), (fine.RequestPacket(), peer)])
    assert fine.VerifyReply(fine.CreateReply(packet=reply), reply)
    assert packets("error") == error + 1
    # A bug in a whole batch leaves it unanswered; the listener still serves the next one.
    real_handle = gateway.handle
    monkeypatch.setattr(gateway, "handle", lambda datagrams: 1 / 0)
    with pytest.raises(Timeout):
        client.SendPacket(request(client, Acct_Status_Type="Start", Acct_Session_Id="lost",
                                  **{"3GPP-IMSI": imsi}))
    assert packets("error") >= error + 2
    monkeypatch.setattr(gateway, "handle", real_handle)
    reply = client.SendPacket(request(client, Acct_Status_Type="Start", Acct_Session_Id="next",
                                      **{"3GPP-IMSI": imsi}))
    assert reply.code == radius_packet.AccountingResponse
    assert len(account.client.wireless.v1.sims(sid).data_sessions.list()) == 2  # fine, next


def test_a_gateway_restarting_ends_the_sessions_it_carried_and_no_others(server, account, sim,
                                                                          gateway):
    sid, imsi = sim
    client = pyrad_client(gateway)
    stamp = int(server.clock.now().timestamp())
    for nas, session in (("pgw-1", "one"), ("pgw-1", "two"), ("pgw-2", "three")):
        client.SendPacket(request(client, Acct_Status_Type="Start", Acct_Session_Id=session,
                                  NAS_Identifier=nas, Event_Timestamp=stamp,
                                  **{"3GPP-IMSI": imsi}))
    client.SendPacket(request(client, Acct_Status_Type="Interim-Update", Acct_Session_Id="one",
                              NAS_Identifier="pgw-1", Event_Timestamp=stamp + 60,
                              Acct_Input_Octets=500, Acct_Output_Octets=1500,
                              **{"3GPP-IMSI": imsi}))
    on = request(client, Acct_Status_Type="Accounting-On", NAS_Identifier="pgw-1",
                 Event_Timestamp=stamp + 120)
    assert client.SendPacket(on).code == radius_packet.AccountingResponse
    with server.runtime.db.read() as db:
        rows = {row.session_id: row for row in db.scalars(
            select(DataSession).where(DataSession.sim_sid == sid))}
    assert {name: (row.status, row.end_reason, row.gateway) for name, row in rows.items()} == {
        "one": ("ended", "NAS_REBOOT", "pgw-1"), "two": ("ended", "NAS_REBOOT", "pgw-1"),
        "three": ("open", None, "pgw-2")}
    assert int(rows["one"].end.timestamp()) == stamp + 120
    assert rows["one"].bytes_up + rows["one"].bytes_down == 2000  # nothing more counted
    [record] = account.client.wireless.v1.sims(sid).usage_records.list(**window(server))
    assert record.data["total"] == 2000
    # Its Stop for a session already ended, sent late, changes nothing.
    client.SendPacket(request(client, Acct_Status_Type="Stop", Acct_Session_Id="two",
                              NAS_Identifier="pgw-1", Event_Timestamp=stamp + 130,
                              **{"3GPP-IMSI": imsi}))
    with server.runtime.db.read() as db:
        two = db.scalar(select(DataSession).where(DataSession.sim_sid == sid,
                                                  DataSession.session_id == "two"))
    assert (two.end_reason, int(two.end.timestamp())) == ("NAS_REBOOT", stamp + 120)


def test_with_a_client_list_each_client_has_its_own_secret_and_others_are_dropped(server, sim):
    _sid, imsi = sim
    listener = RadiusServer(server.runtime, None, host="127.0.0.1", port=0,
                            clients={"127.0.0.0/8": "loopback-secret", "192.0.2.7": SECRET}
                            ).start()
    try:
        ours = pyrad_client(listener, secret="loopback-secret")
        reply = ours.SendPacket(request(ours, Acct_Status_Type="Start", Acct_Session_Id="c1",
                                        **{"3GPP-IMSI": imsi}))
        assert reply.code == radius_packet.AccountingResponse  # answered with its secret
        shared = pyrad_client(listener)  # the other client's secret, from loopback
        bad = packets("bad_authenticator")
        with pytest.raises(Timeout):
            shared.SendPacket(request(shared, Acct_Status_Type="Start", Acct_Session_Id="c2",
                                      **{"3GPP-IMSI": imsi}))
        assert packets("bad_authenticator") == bad + shared.retries
        # From the listed address its own secret works; from an address not listed, nothing.
        raw = request(shared, Acct_Status_Type="Start", Acct_Session_Id="c3",
                      **{"3GPP-IMSI": imsi})
        unknown = packets("unknown_client")
        assert listener.handle([(raw.RequestPacket(), ("198.51.100.1", 1812))]) == []
        assert packets("unknown_client") == unknown + 1
        [(_to, reply)] = listener.handle([(raw.RequestPacket(), ("192.0.2.7", 1812))])
        assert raw.VerifyReply(raw.CreateReply(packet=reply), reply)
    finally:
        listener.stop()
    with pytest.raises(ValueError):
        RadiusServer(server.runtime, None, host="127.0.0.1", port=0)


def test_radius_client_values():
    import typer

    from simplane.cli import radius_clients

    assert radius_clients(["10.0.0.0/8=a", "192.0.2.1=b=c", "2001:db8::/32=d"]) == {
        "10.0.0.0/8": "a", "192.0.2.1": "b=c", "2001:db8::/32": "d"}
    for bad in ("10.0.0.0/8", "nowhere=x", "=x", "10.0.0.1="):
        with pytest.raises(typer.BadParameter):
            radius_clients([bad])


def test_status_server_is_answered_on_the_accounting_port(gateway):
    need_radclient()
    status = packets("status")
    done = subprocess.run(
        [RADCLIENT or "radclient", "-x", "-t", "1", "-r", "1", f"127.0.0.1:{gateway.port}",
         "status", SECRET], input="Message-Authenticator = 0x00\n", capture_output=True,
        text=True, timeout=30, check=False)
    assert done.returncode == 0 and "Accounting-Response" in done.stdout, done.stdout + done.stderr
    assert packets("status") == status + 1
    bad = packets("bad_authenticator")
    done = subprocess.run(
        [RADCLIENT or "radclient", "-x", "-t", "1", "-r", "1", f"127.0.0.1:{gateway.port}",
         "status", "not-the-secret"], input="Message-Authenticator = 0x00\n",
        capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode != 0 and packets("bad_authenticator") == bad + 1


def test_an_accounting_on_naming_its_gateway_with_a_nul_is_malformed_alone(gateway):
    client = pyrad_client(gateway)
    bad = request(client, Acct_Status_Type="Accounting-On", NAS_Identifier="pgw\x00-1")
    good = request(client, Acct_Status_Type="Accounting-On", NAS_Identifier="pgw-2")
    peer = ("127.0.0.1", 40004)
    malformed = packets("malformed")
    [(_to, reply)] = gateway.handle([(bad.RequestPacket(), peer), (good.RequestPacket(), peer)])
    assert good.VerifyReply(good.CreateReply(packet=reply), reply)
    assert packets("malformed") == malformed + 1
