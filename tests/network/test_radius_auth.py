"""RADIUS authorisation (RFC 2865) over real loopback UDP: radclient asks, the one policy
answers."""

from __future__ import annotations

import socket
import subprocess

import pytest
from pyrad import packet as radius_packet
from pyrad.client import Client as RadiusClient
from sqlalchemy import select, update

from simplane.core.clock import add_months, month_started
from simplane.core.metrics import REGISTRY
from simplane.network import radius
from simplane.network.authorization import AuthServer
from simplane.network.events import home_network
from simplane.network.models import DataSession
from simplane.supersim import errors as E
from simplane.supersim.models import Sim as SuperSim
from simplane.wireless.models import Sim
from tests.network.test_connection_events import emitted
from tests.network.test_radius import RADCLIENT, SECRET, need_radclient
from tests.supersim.conftest import ATT, VODAFONE_UK, stock


def requests(outcome: str) -> float:
    return REGISTRY.get_sample_value("simplane_radius_auth_requests_total",
                                     {"outcome": outcome}) or 0.0


@pytest.fixture
def auth(server):
    """An authorisation listener on a free loopback port."""
    srv = AuthServer(server.runtime, SECRET, host="127.0.0.1", port=0).start()
    yield srv
    srv.stop()


def radclient(auth: AuthServer, attributes: dict[str, object], command: str = "auth",
              secret: str = SECRET) -> tuple[str, dict[str, str]]:
    """Send one request with radclient: what it received (e.g. Access-Accept) and the
    attributes of the answer."""
    line = ", ".join(f"{k} = {v}" for k, v in attributes.items())
    out = subprocess.run(
        [RADCLIENT or "radclient", "-x", "-t", "1", "-r", "1", f"127.0.0.1:{auth.port}",
         command, secret], input=line + "\n", capture_output=True, text=True, timeout=30,
        check=False)
    received, answer = "", {}
    for text in out.stdout.splitlines():
        if text.startswith("Received "):
            received = text.split()[1]
        elif received and "=" in text and text.startswith(("\t", " ")):
            name, _, value = text.strip().partition(" = ")
            answer[name] = value.strip('"')
    return received, answer


def imsi_of(server, model, sid: str) -> str:  # type: ignore[no-untyped-def]
    with server.runtime.db.read() as db:
        return db.scalar(select(model.imsi).where(model.sid == sid))


@pytest.fixture
def wireless(server, account):  # type: ignore[no-untyped-def]
    """An active Wireless SIM on a plan with a 1 MB limit, without national roaming, with its
    IMSI and home network."""
    account.client.wireless.v1.rate_plans.create(
        unique_name="capped", data_limit=1, national_roaming_enabled=False,
        international_roaming=["data"])
    account.client.wireless.v1.rate_plans.create(unique_name="no-data", data_enabled=False)
    [sid] = server.provision(account.sid, 1, status="active", rate_plan="capped")
    imsi = imsi_of(server, Sim, sid)
    return sid, imsi, "".join(home_network(imsi))


def test_an_active_sim_is_accepted_with_its_address_interim_interval_and_period(
        server, account, wireless, auth):
    need_radclient()
    sid, imsi, home = wireless
    with server.runtime.db.write() as db:
        db.execute(update(Sim).where(Sim.sid == sid).values(ip_address="10.20.30.40"))
    sim = account.client.wireless.v1.sims(sid).fetch()
    received, answer = radclient(auth, {"User-Name": f'"{imsi}"', "3GPP-IMSI": f'"{imsi}"',
                                        "3GPP-SGSN-MCC-MNC": f'"{home}"',
                                        "User-Password": '"x"'})
    assert received == "Access-Accept"
    assert answer["Framed-IP-Address"] == sim.ip_address == "10.20.30.40"
    assert answer["Acct-Interim-Interval"] == "300"
    # The 1 MB limit counts per billing period from activation: ask again when it renews.
    now = server.clock.now()
    renews = add_months(month_started(sim.date_created, now), 1)
    assert abs(int(answer["Session-Timeout"]) - (renews - now).total_seconds()) <= 1
    assert "Message-Authenticator" in answer
    # Nothing was recorded: the session starts with the gateway's accounting.
    with server.runtime.db.read() as db:
        assert db.scalar(select(DataSession.pk).where(DataSession.sim_sid == sid)) is None


def test_each_refusal_is_an_access_reject_naming_its_reason_and_a_refused_session(
        server, account, wireless, auth):
    need_radclient()
    sid, imsi, home = wireless
    other_mnc = home[:3] + ("02" if home[3:] != "02" else "03")
    ask = {"3GPP-IMSI": f'"{imsi}"', "3GPP-SGSN-MCC-MNC": f'"{home}"'}

    def reason(**changes) -> str:  # type: ignore[no-untyped-def]
        received, answer = radclient(auth, {**ask, **changes})
        assert received == "Access-Reject", (received, answer)
        assert "Framed-IP-Address" not in answer
        return answer["Reply-Message"].split(":")[0]

    rejected = requests("rejected")
    assert reason(**{"3GPP-IMSI": '"001019999999999"'}) == "UNKNOWN_SIM"
    # National roaming (the home country, another network) is off in this plan.
    assert reason(**{"3GPP-SGSN-MCC-MNC": f'"{other_mnc}"', "Acct-Session-Id": '"r-1"'}) \
        == "ROAMING_DISABLED"
    # Over the period's limit (as ingest counted it).
    server.network(sid, "session.started", session_id="used", mcc=home[:3], mnc=home[3:])
    server.network(sid, "session.updated", session_id="used", mcc=home[:3], mnc=home[3:],
                   bytes_down=1_000_000)
    assert reason(**{"Acct-Session-Id": '"r-2"'}) == "DATA_LIMIT_REACHED"
    sims = account.client.wireless.v1.sims
    sims(sid).update(rate_plan="no-data")
    assert reason(**{"Acct-Session-Id": '"r-3"'}) == "DATA_DISABLED"
    sims(sid).update(status="suspended")
    assert reason(**{"Acct-Session-Id": '"r-4"'}) == "SIM_NOT_ACTIVE"
    assert requests("rejected") == rejected + 5
    # Each refusal is a refused data session, as ingest records one, never listed.
    with server.runtime.db.read() as db:
        refused = dict(db.execute(select(DataSession.session_id, DataSession.end_reason).where(
            DataSession.sim_sid == sid, DataSession.status == "refused")).all())
    assert refused == {"r-1": "ROAMING_DISABLED", "r-2": "DATA_LIMIT_REACHED",
                       "r-3": "DATA_DISABLED", "r-4": "SIM_NOT_ACTIVE"}
    [listed] = sims(sid).data_sessions.list()  # only the one that was used
    assert listed.end is not None  # ended at its limit


@pytest.fixture
def super_sim(server, twilio):  # type: ignore[no-untyped-def]
    supersim = twilio.supersim.v1
    supersim.network_access_profiles.create(unique_name="us", networks=[ATT.sid])
    supersim.fleets.create(network_access_profile="us", unique_name="f", data_limit=1)
    supersim.fleets.create(network_access_profile="us", unique_name="off", data_enabled=False)
    [row] = stock(server)
    sim = supersim.sims.create(iccid=row["iccid"], registration_code=row["registration_code"])
    supersim.sims(sim.sid).update(fleet="f", status="active")
    server.drain()
    return sim.sid, row["imsi"]


def test_a_super_sim_is_answered_by_its_fleet_and_refusals_are_data_session_failed(
        server, twilio, super_sim, auth):
    need_radclient()
    sid, imsi = super_sim
    att = {"3GPP-IMSI": f'"{imsi}"', "3GPP-SGSN-MCC-MNC": '"310410"'}
    received, answer = radclient(auth, att)
    assert received == "Access-Accept" and "Session-Timeout" in answer  # the Fleet's limit
    uk = VODAFONE_UK.identifiers[0] if VODAFONE_UK else ("234", "15")
    received, answer = radclient(auth, {**att, "3GPP-SGSN-MCC-MNC": f'"{"".join(uk)}"',
                                        "Acct-Session-Id": '"uk"'})
    assert received == "Access-Reject"
    assert answer["Reply-Message"].startswith("NETWORK_NOT_ALLOWED:")
    twilio.supersim.v1.sims(sid).update(fleet="off")
    received, answer = radclient(auth, {**att, "Acct-Session-Id": '"off"'})
    assert received == "Access-Reject" and answer["Reply-Message"].startswith("DATA_DISABLED:")
    # As ingest reports a refused session: data-session.failed with Twilio's error code.
    failed = [e for e in emitted(server, sid)
              if e["event_type"].endswith("data-session.failed")]
    assert [e["error"]["code"] for e in failed] == [E.DATA_DISABLED]
    twilio.supersim.v1.sims(sid).update(status="inactive")
    server.drain()
    received, answer = radclient(auth, {**att, "Acct-Session-Id": '"inactive"'})
    assert received == "Access-Reject" and answer["Reply-Message"].startswith("SIM_NOT_ACTIVE:")
    assert imsi_of(server, SuperSim, sid) == imsi


def pyrad_auth(auth: AuthServer, secret: str = SECRET) -> RadiusClient:
    client = RadiusClient(server="127.0.0.1", authport=auth.port, secret=secret.encode(),
                          dict=radius.dictionary())
    client.timeout = 2
    client.retries = 1
    return client


def exchange(auth: AuthServer, raw: bytes, times: int = 1) -> list[bytes | None]:
    """Send a datagram `times` times; the answers (None: none within a second)."""
    answers: list[bytes | None] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1)
        for _ in range(times):
            sock.sendto(raw, ("127.0.0.1", auth.port))
            try:
                answers.append(sock.recv(4096))
            except TimeoutError:
                answers.append(None)
    return answers


def test_message_authenticator_eap_retransmissions_and_status_server(server, wireless, auth):
    _sid, imsi, home = wireless
    client = pyrad_auth(auth)

    def access_request(**attrs) -> radius_packet.AuthPacket:  # type: ignore[no-untyped-def]
        pkt = client.CreateAuthPacket(code=radius_packet.AccessRequest,
                                      message_authenticator=False)
        pkt["3GPP-IMSI"] = imsi
        pkt["3GPP-SGSN-MCC-MNC"] = home
        for name, value in attrs.items():
            pkt[name.replace("_", "-")] = value
        return pkt

    # An EAP-Message without a Message-Authenticator is silently discarded (RFC 3579 3.2).
    bad = requests("bad_authenticator")
    pkt = access_request(EAP_Message=b"\x02\x01\x00\x05\x01")
    assert exchange(auth, pkt.RequestPacket()) == [None]
    assert requests("bad_authenticator") == bad + 1
    # With one, it is answered; a wrong one is discarded.
    pkt = access_request(EAP_Message=b"\x02\x01\x00\x05\x01")
    pkt.add_message_authenticator()
    raw = pkt.RequestPacket()
    [answer] = exchange(auth, raw)
    assert answer is not None and answer[0] == radius_packet.AccessAccept
    reply = pkt.CreateReply(packet=answer)
    assert pkt.VerifyReply(reply, answer)
    assert reply.verify_message_authenticator(original_authenticator=pkt.authenticator,
                                              original_code=pkt.code)
    forged = bytearray(raw)
    at = 20
    while forged[at] != 80:  # to the Message-Authenticator
        at += forged[at + 1]
    forged[at + 2] ^= 0xFF
    assert exchange(auth, bytes(forged)) == [None]
    assert requests("bad_authenticator") == bad + 2
    # A retransmission gets the same answer, counted as a duplicate.
    duplicates = requests("duplicate")
    again = access_request()
    first, second = exchange(auth, again.RequestPacket(), times=2)
    assert first == second and first is not None
    assert requests("duplicate") == duplicates + 1
    # A wrong shared secret: no answer.
    wrong = pyrad_auth(auth, "not-the-secret").CreateAuthPacket(code=radius_packet.AccessRequest)
    wrong["3GPP-IMSI"] = imsi
    wrong.add_message_authenticator()
    assert exchange(auth, wrong.RequestPacket()) == [None]
    # Status-Server (RFC 5997) on the authentication port: an Access-Accept.
    status = client.CreateAuthPacket(code=radius_packet.StatusServer)
    [answer] = exchange(auth, status.RequestPacket())
    assert answer is not None and answer[0] == radius_packet.AccessAccept
    # Malformed: no IMSI at all.
    malformed = requests("malformed")
    nobody = client.CreateAuthPacket(code=radius_packet.AccessRequest)
    nobody["User-Name"] = "someone@example"
    assert exchange(auth, nobody.RequestPacket()) == [None]
    assert requests("malformed") == malformed + 1
