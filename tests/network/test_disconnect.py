"""Dynamic Authorization (RFC 5176): sessions a SIM may no longer have are cut off at the packet
gateway that carries them, with a Disconnect-Request to the gateway's DAE port. The gateway's
side is a UDP listener of the test that decodes and verifies each request with pyrad and answers
as told: ACK, NAK, or nothing."""

from __future__ import annotations

import queue
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from pyrad import packet as radius_packet
from pyrad.client import Client as RadiusClient
from sqlalchemy import select, update

from simplane.core.metrics import REGISTRY
from simplane.network import dae, radius
from simplane.network.models import DataSession, Disconnect
from simplane.network.radius import RadiusServer
from simplane.wireless.models import Sim
from tests.network.test_connection_events import emitted
from tests.network.test_radius import SECRET
from tests.supersim.conftest import ATT, VODAFONE_UK, stock

LATER = timedelta(minutes=10)  # past any retry's backoff (5 minutes at most)


class GatewayDae:
    """A packet gateway's Dynamic Authorization server on host:port."""

    def __init__(self, host: str, port: int, answer: str = "ack") -> None:
        self.answer = answer  # ack, nak (Error-Cause 506), gone (503) or silent
        self.received: queue.Queue[radius_packet.Packet] = queue.Queue()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        dictionary = radius.dictionary()
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            pkt = radius_packet.CoAPacket(packet=data, secret=SECRET.encode(), dict=dictionary)
            if pkt.code != radius_packet.DisconnectRequest or not pkt.VerifyCoARequest():
                continue
            self.received.put(pkt)
            if self.answer == "silent":
                continue
            reply = pkt.CreateReply()
            if self.answer == "ack":
                reply.code = radius_packet.DisconnectACK
            else:
                reply.code = radius_packet.DisconnectNAK
                reply["Error-Cause"] = 503 if self.answer == "gone" else 506
            self.sock.sendto(reply.ReplyPacket(), peer)

    def requests(self) -> list[radius_packet.Packet]:
        found = []
        while not self.received.empty():
            found.append(self.received.get_nowait())
        return found

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def network(server, monkeypatch) -> Iterator[dict]:  # type: ignore[no-untyped-def]
    """Two gateways (127.0.0.1 and 127.0.0.2) taking Disconnect-Requests on one port, and the
    accounting listener that records where each session's requests go."""
    settings = server.runtime.settings
    port = free_udp_port()
    monkeypatch.setattr(settings, "radius_dae_port", port)
    monkeypatch.setattr(settings, "radius_secret", SECRET)
    monkeypatch.setattr(settings, "radius_dae_wait", 5.0)  # ends when all answered
    gateways = {"pgw-1": GatewayDae("127.0.0.1", port), "pgw-2": GatewayDae("127.0.0.2", port)}
    accounting = RadiusServer(server.runtime, SECRET, host="127.0.0.1", port=0).start()
    forget_owed(server)  # nothing left by other tests' sessions for these gateways
    yield {"accounting": accounting, **gateways}
    accounting.stop()
    for gateway in gateways.values():
        gateway.close()
    forget_owed(server)  # nothing left for the next test's gateways


def forget_owed(server) -> None:  # type: ignore[no-untyped-def]
    with server.runtime.db.write() as db:
        db.execute(update(Disconnect).where(Disconnect.status.in_(("pending", "held")))
                   .values(status="failed"))


def start_session(network: dict, imsi: str, session_id: str, gateway: str = "pgw-1",
                  ip: str = "10.64.0.7", mcc_mnc: str = "90142") -> None:
    """An accounting Start from the gateway, as it sends one."""
    accounting: RadiusServer = network["accounting"]
    client = RadiusClient(server="127.0.0.1", acctport=accounting.port, secret=SECRET.encode(),
                          dict=radius.dictionary())
    client.timeout, client.retries = 5, 1
    pkt = client.CreateAcctPacket()
    for name, value in {"Acct-Status-Type": "Start", "Acct-Session-Id": session_id,
                        "User-Name": f"{imsi}@iot", "3GPP-IMSI": imsi,
                        "NAS-Identifier": gateway,
                        "NAS-IP-Address": "127.0.0.1" if gateway == "pgw-1" else "127.0.0.2",
                        "Framed-IP-Address": ip, "3GPP-SGSN-MCC-MNC": mcc_mnc}.items():
        pkt[name] = value
    assert client.SendPacket(pkt).code == radius_packet.AccountingResponse


def disconnects(outcome: str) -> float:
    return REGISTRY.get_sample_value("simplane_radius_disconnects_total",
                                     {"outcome": outcome}) or 0.0


def session_of(server, sim_sid: str, session_id: str) -> DataSession:  # type: ignore[no-untyped-def]
    with server.runtime.db.read() as db:
        return db.scalars(select(DataSession).where(DataSession.sim_sid == sim_sid,
                                                    DataSession.session_id == session_id)).one()


def request_of(server, sim_sid: str) -> Disconnect:  # type: ignore[no-untyped-def]
    with server.runtime.db.read() as db:
        return db.scalars(select(Disconnect).where(Disconnect.sim_sid == sim_sid)).one()


def shown_to(server, account, sim_sid: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    return httpx.get(f"{server.base_url}/network/v1/Sims/{sim_sid}/Disconnects",
                     auth=(account.sid, account.token), timeout=10)


@pytest.fixture
def sims(server, account):  # type: ignore[no-untyped-def]
    """Two active Wireless SIMs, (SID, IMSI) each."""
    account.client.wireless.v1.rate_plans.create(unique_name="p", international_roaming=["data"],
                                                 data_limit=10)
    account.client.wireless.v1.rate_plans.create(unique_name="off", data_enabled=False)
    sids = server.provision(account.sid, 2, status="active", rate_plan="p")
    with server.runtime.db.read() as db:
        imsis = dict(db.execute(select(Sim.sid, Sim.imsi).where(Sim.sid.in_(sids))).all())
    return [(sid, imsis[sid]) for sid in sids]


def test_a_suspended_sim_is_disconnected_at_its_gateway_and_its_session_ends(
        server, account, sims, network):
    (sid, imsi), _other = sims
    start_session(network, imsi, "acct-1")
    acknowledged = disconnects("acknowledged")
    account.client.wireless.v1.sims(sid).update(status="suspended")
    server.drain()

    [request] = network["pgw-1"].requests()  # signed with the gateway's secret (verified)
    assert request["User-Name"] == [f"{imsi}@iot"]
    assert request["Acct-Session-Id"] == ["acct-1"]
    assert request["Framed-IP-Address"] == ["10.64.0.7"]
    assert request["NAS-Identifier"] == ["pgw-1"]
    assert "Event-Timestamp" in request
    assert network["pgw-2"].requests() == []
    # The ACK ends the session as a Stop would, for the reason it was cut off.
    session = session_of(server, sid, "acct-1")
    assert (session.status, session.end_reason) == ("ended", "SIM_NOT_ACTIVE")
    [listed] = account.client.wireless.v1.sims(sid).data_sessions.list()
    assert listed.end is not None
    row = request_of(server, sid)
    assert (row.status, row.attempts, row.reason) == ("acknowledged", 1, "SIM_NOT_ACTIVE")
    assert disconnects("acknowledged") == acknowledged + 1
    # Nothing more is owed: later passes send nothing.
    server.clock.advance(LATER)
    server.drain()
    assert network["pgw-1"].requests() == []


def test_a_nak_and_a_silent_gateway_are_retried_and_hold_up_no_other(
        server, account, sims, network, monkeypatch):
    (nak_sid, nak_imsi), (silent_sid, silent_imsi) = sims
    start_session(network, nak_imsi, "s-nak", "pgw-1")
    start_session(network, silent_imsi, "s-silent", "pgw-2")
    network["pgw-1"].answer, network["pgw-2"].answer = "nak", "silent"
    monkeypatch.setattr(server.runtime.settings, "radius_dae_wait", 0.5)
    for sid in (nak_sid, silent_sid):
        account.client.wireless.v1.sims(sid).update(status="deactivated")
    server.drain()

    assert len(network["pgw-1"].requests()) == 1 and len(network["pgw-2"].requests()) == 1
    refused, silent = request_of(server, nak_sid), request_of(server, silent_sid)
    assert (refused.status, refused.attempts, refused.last_error) == ("pending", 1, "NAK 506")
    assert (silent.status, silent.attempts) == ("pending", 1)
    # The SIM's account sees how it goes; another account does not see it at all.
    [shown] = shown_to(server, account, nak_sid).json()["disconnects"]
    assert {k: shown[k] for k in ("session_id", "gateway", "reason", "status", "attempts",
                                  "last_error")} == {
        "session_id": "s-nak", "gateway": "127.0.0.1", "reason": "SIM_NOT_ACTIVE",
        "status": "pending", "attempts": 1, "last_error": "NAK 506"}
    assert shown_to(server, server.new_account(), nak_sid).status_code == 404
    assert session_of(server, nak_sid, "s-nak").status == "open"
    # Not again before the backoff.
    server.drain()
    assert network["pgw-1"].requests() == [] and network["pgw-2"].requests() == []

    # The first gateway now acknowledges; the second is still silent, and asked again.
    network["pgw-1"].answer = "ack"
    server.clock.advance(LATER)
    server.drain()
    assert len(network["pgw-1"].requests()) == 1 and len(network["pgw-2"].requests()) == 1
    assert request_of(server, nak_sid).status == "acknowledged"
    assert session_of(server, nak_sid, "s-nak").status == "ended"
    silent = request_of(server, silent_sid)
    assert (silent.status, silent.attempts, silent.last_error) == ("pending", 2, "no answer")

    # A restart loses nothing: a new process sends it again when due, and the gateway, which
    # no longer has the session, says so (Error-Cause 503): the session is over too.
    dae._senders.clear()
    network["pgw-2"].answer = "gone"
    server.clock.advance(LATER)
    server.drain()
    assert len(network["pgw-2"].requests()) == 1
    assert request_of(server, silent_sid).status == "gone"
    session = session_of(server, silent_sid, "s-silent")
    assert (session.status, session.end_reason) == ("ended", "SIM_NOT_ACTIVE")


def test_a_reset_completes_only_once_the_gateway_acknowledged(server, account, sims, network,
                                                              monkeypatch):
    (sid, imsi), _other = sims
    start_session(network, imsi, "s-reset")
    network["pgw-1"].answer = "silent"
    monkeypatch.setattr(server.runtime.settings, "radius_dae_wait", 0.2)
    wireless = account.client.wireless.v1
    assert wireless.sims(sid).update(reset_status="resetting").reset_status == "resetting"
    server.drain()
    assert len(network["pgw-1"].requests()) == 1
    assert wireless.sims(sid).fetch().reset_status == "resetting"

    network["pgw-1"].answer = "ack"
    server.clock.advance(LATER)
    server.drain()
    assert len(network["pgw-1"].requests()) == 1
    assert wireless.sims(sid).fetch().reset_status is None
    session = session_of(server, sid, "s-reset")
    assert (session.status, session.end_reason) == ("ended", "RESET")
    assert wireless.sims(sid).fetch().status == "active"


def test_a_plan_without_data_and_a_limit_crossed_in_ingest_disconnect(server, account, sims,
                                                                       network):
    (moved, moved_imsi), (capped, capped_imsi) = sims
    start_session(network, moved_imsi, "s-moved")
    start_session(network, capped_imsi, "s-capped", "pgw-2", ip="10.64.0.8")
    account.client.wireless.v1.sims(moved).update(rate_plan="off")
    server.drain()
    assert [r["Acct-Session-Id"] for r in network["pgw-1"].requests()] == [["s-moved"]]
    assert request_of(server, moved).reason == "DATA_DISABLED"
    assert session_of(server, moved, "s-moved").end_reason == "DATA_DISABLED"

    # Past the 10 MB limit: ingest ends the session at the limit, and its gateway is told.
    server.network(capped, "session.updated", session_id="s-capped", mcc="901", mnc="42",
                   bytes_down=11_000_000)
    server.drain()
    [request] = network["pgw-2"].requests()
    assert request["Framed-IP-Address"] == ["10.64.0.8"]
    assert request_of(server, capped).status == "acknowledged"
    assert session_of(server, capped, "s-capped").end_reason == "DATA_LIMIT_REACHED"


def test_a_session_its_gateway_stopped_first_is_not_disconnected(server, account, sims, network):
    (sid, imsi), _other = sims
    start_session(network, imsi, "s-stopped")
    wireless = account.client.wireless.v1
    wireless.sims(sid).update(reset_status="resetting")  # owed: sent when the worker runs
    assert request_of(server, sid).status == "pending"
    server.network(sid, "session.ended", session_id="s-stopped", mcc="901", mnc="42")
    server.drain()
    assert network["pgw-1"].requests() == []
    assert request_of(server, sid).status == "ended"
    assert wireless.sims(sid).fetch().reset_status is None


def test_a_super_sim_made_inactive_is_disconnected_with_data_session_ended(server, twilio,
                                                                           network):
    supersim = twilio.supersim.v1
    supersim.network_access_profiles.create(unique_name="us", networks=[ATT.sid])
    supersim.fleets.create(network_access_profile="us", unique_name="f")
    [row] = stock(server)
    sim = supersim.sims.create(iccid=row["iccid"], registration_code=row["registration_code"])
    supersim.sims(sim.sid).update(fleet="f", status="active")
    server.drain()
    start_session(network, row["imsi"], "s-super", mcc_mnc="310410")
    assert [a.ip_address for a in supersim.sims(sim.sid).sim_ip_addresses.list()] == ["10.64.0.7"]

    supersim.sims(sim.sid).update(status="inactive")
    server.drain()  # the scheduled change, then the Disconnect-Request
    [request] = network["pgw-1"].requests()
    assert request["Acct-Session-Id"] == ["s-super"]
    assert request_of(server, sim.sid).status == "acknowledged"
    assert session_of(server, sim.sid, "s-super").status == "ended"
    assert emitted(server, sim.sid)[-1]["event_type"].endswith("data-session.ended")


def test_a_request_never_answered_is_given_up_after_the_retry_horizon(server, account, sims,
                                                                      network, monkeypatch):
    (sid, imsi), _other = sims
    start_session(network, imsi, "s-lost")
    network["pgw-1"].answer = "silent"
    monkeypatch.setattr(server.runtime.settings, "radius_dae_wait", 0.1)
    monkeypatch.setattr(server.runtime.settings, "radius_dae_retry_horizon", 3600)
    wireless = account.client.wireless.v1
    wireless.sims(sid).update(reset_status="resetting")
    failed = disconnects("failed")
    for _ in range(13):  # an hour of retries, 5 minutes apart at most
        server.drain()
        server.clock.advance(LATER / 2)
    server.drain()
    sent = len(network["pgw-1"].requests())
    row = request_of(server, sid)
    assert (row.status, row.attempts, row.last_error) == ("failed", sent, "no answer")
    assert 5 <= sent <= 14
    assert disconnects("failed") == failed + 1
    # The reset no longer waits for it; the session is left as accounting reports it.
    assert wireless.sims(sid).fetch().reset_status is None
    assert session_of(server, sid, "s-lost").status == "open"


def test_sessions_on_a_network_their_fleet_may_no_longer_use_are_disconnected(server, twilio,
                                                                              network):
    """A network taken out of the Fleet's Network Access Profile, a Fleet moved to a profile
    without it, a Super SIM moved to a Fleet without it: the sessions on it are cut off, the
    others go on."""
    supersim = twilio.supersim.v1
    uk_only = supersim.network_access_profiles.create(networks=[VODAFONE_UK.sid])
    fleets = {"uk": supersim.fleets.create(network_access_profile=uk_only.sid, unique_name="uk")}
    naps = {}
    for name in ("f1", "f2", "f3"):  # each on a profile of its own with both networks
        naps[name] = supersim.network_access_profiles.create(
            networks=[ATT.sid, VODAFONE_UK.sid])
        fleets[name] = supersim.fleets.create(network_access_profile=naps[name].sid,
                                              unique_name=name)
    sims = {}
    for name, fleet in (("removed", "f1"), ("removed-uk", "f1"), ("moved-fleet", "f2"),
                        ("moved-sim", "f3")):
        [row] = stock(server)
        sim = supersim.sims.create(iccid=row["iccid"], registration_code=row["registration_code"])
        supersim.sims(sim.sid).update(fleet=fleet, status="active")
        sims[name] = (sim.sid, row["imsi"])
    server.drain()
    for n, (name, (_sid, imsi)) in enumerate(sims.items()):
        start_session(network, imsi, f"s-{name}", ip=f"10.64.1.{n}",
                      mcc_mnc="23415" if name == "removed-uk" else "310410")

    # DELETE /v1/NetworkAccessProfiles/{Sid}/Networks/{Sid}: AT&T leaves f1's profile.
    supersim.network_access_profiles(naps["f1"].sid).networks(ATT.sid).delete()
    server.drain()
    [request] = network["pgw-1"].requests()
    assert request["Acct-Session-Id"] == ["s-removed"]
    assert request_of(server, sims["removed"][0]).reason == "NETWORK_NOT_ALLOWED"
    assert session_of(server, sims["removed"][0], "s-removed").end_reason == (
        "NETWORK_NOT_ALLOWED")
    assert session_of(server, sims["removed-uk"][0], "s-removed-uk").status == "open"

    # f2 moves to the UK-only profile; a SIM of f3 moves to the UK-only Fleet.
    supersim.fleets(fleets["f2"].sid).update(network_access_profile=uk_only.sid)
    supersim.sims(sims["moved-sim"][0]).update(fleet="uk")
    server.drain()
    assert sorted(r["Acct-Session-Id"][0] for r in network["pgw-1"].requests()) == [
        "s-moved-fleet", "s-moved-sim"]
    for name in ("moved-fleet", "moved-sim"):
        assert request_of(server, sims[name][0]).status == "acknowledged"
        assert session_of(server, sims[name][0], f"s-{name}").end_reason == (
            "NETWORK_NOT_ALLOWED")
    assert session_of(server, sims["removed-uk"][0], "s-removed-uk").status == "open"


def test_sessions_opened_without_a_dae_port_are_cut_off_by_a_server_started_with_one(
        server, account, sims, network, monkeypatch):
    """Without --radius-dae-port nothing is sent, and what is owed meanwhile is held; a server
    started with the port sends what the policy still calls for, and cuts off sessions opened
    before it as any other."""
    (suspended, suspended_imsi), (back, back_imsi) = sims
    port = server.runtime.settings.radius_dae_port
    monkeypatch.setattr(server.runtime.settings, "radius_dae_port", None)
    start_session(network, suspended_imsi, "s-before")
    start_session(network, back_imsi, "s-back", ip="10.64.0.8")
    wireless = account.client.wireless.v1
    wireless.sims(suspended).update(status="suspended")
    wireless.sims(back).update(status="suspended")
    wireless.sims(back).update(status="active")  # may use data again
    assert wireless.sims(back).update(reset_status="resetting").reset_status == "resetting"
    server.drain()
    assert network["pgw-1"].requests() == []
    assert wireless.sims(back).fetch().reset_status is None  # completed without its gateway
    [shown] = shown_to(server, account, suspended).json()["disconnects"]
    assert (shown["status"], shown["reason"], shown["attempts"]) == ("held", "SIM_NOT_ACTIVE", 0)
    assert session_of(server, suspended, "s-before").status == "open"

    # Restarted with the port, two days later: the held request of the SIM still suspended
    # goes out (its retry horizon counting from now), the one of the SIM active again is
    # dropped.
    held_since = request_of(server, suspended).date_created
    server.clock.advance(timedelta(days=2))
    monkeypatch.setattr(server.runtime.settings, "radius_dae_port", port)
    dae._senders.clear()
    server.drain()
    [request] = network["pgw-1"].requests()
    assert request["Acct-Session-Id"] == ["s-before"]
    assert request["Framed-IP-Address"] == ["10.64.0.7"]
    assert request["NAS-Identifier"] == ["pgw-1"]
    released = request_of(server, suspended)
    assert released.status == "acknowledged"
    assert released.date_created >= held_since + timedelta(days=2)
    session = session_of(server, suspended, "s-before")
    assert (session.status, session.end_reason) == ("ended", "SIM_NOT_ACTIVE")
    assert request_of(server, back).status == "dropped"
    assert session_of(server, back, "s-back").status == "open"

    # The session opened before the port, suspended now: cut off as any other.
    wireless.sims(back).update(status="suspended")
    server.drain()
    [request] = network["pgw-1"].requests()
    assert request["Acct-Session-Id"] == ["s-back"]
    assert request_of(server, back).status == "acknowledged"
    assert session_of(server, back, "s-back").status == "ended"
