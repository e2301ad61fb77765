"""Two `simplane serve` processes (two ports, as on two hosts) on one PostgreSQL database:
RADIUS accounting and API writes through both at once, one of them killed (SIGKILL) and
started again mid-run; every event reaches the webhook sink, every total is exact.

PostgreSQL only (SQLite is one host's file): skipped without a PostgreSQL server, failed
instead with REQUIRE_POSTGRES=1 (the `database_url` fixture's rule)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from pyrad import packet as radius_packet
from pyrad.client import Client as RadiusClient
from pyrad.client import Timeout
from sqlalchemy import select
from twilio.base.exceptions import TwilioException

import simplane
from simplane.events.models import OutboxEvent
from simplane.network import radius
from simplane.supersim import inventory, networks
from simplane.supersim.models import Sim as SuperSim
from tests.events.conftest import active_webhook, subscribe
from tests.support import free_port

SECRET = "testing123"
SIMS = 12
PACKETS = 7  # per SIM: a Start, five Interim-Updates, a Stop
BYTES_UP, BYTES_DOWN = 1_000, 5_000  # growth per Interim-Update
ATT = networks.network_for("310", "410")
CONNECTION = "com.twilio.iot.supersim.connection."


class Host:
    """`simplane serve` with RADIUS accounting, as one host of several would run it."""

    def __init__(self, server, log: Path) -> None:  # type: ignore[no-untyped-def]
        self.server, self.log = server, log
        self.port, self.radius_port = free_port(), free_port()
        self.proc: subprocess.Popen | None = None
        self.up = threading.Event()

    def start(self) -> Host:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIMPLANE_")}
        env["SIMPLANE_SECRET_KEY"] = self.server.runtime.settings.secret_key
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "simplane.cli", "serve", "--port", str(self.port),
             "--database-url", self.server.runtime.settings.database_url, "--log-level",
             "warning", "--radius-port", str(self.radius_port), "--radius-secret", SECRET],
            env=env, stdout=subprocess.DEVNULL, stderr=self.log.open("ab"), cwd=self.log.parent)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                assert self.proc.poll() is None, self.log.read_text()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.05)
        self.up.set()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        self.up.clear()
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


@pytest.fixture
def postgres(database_url):  # type: ignore[no-untyped-def]
    if database_url.startswith("sqlite"):
        pytest.skip("several hosts share a PostgreSQL database, not a SQLite file")


def test_two_servers_on_one_database_one_killed_and_restarted_mid_run(
        postgres, server, account, receiver, tmp_path):
    twilio = account.client
    twilio.supersim.v1.network_access_profiles.create(unique_name="us", networks=[ATT.sid])
    fleet = twilio.supersim.v1.fleets.create(network_access_profile="us", unique_name="f")
    with server.runtime.db.write() as db:
        rows = inventory.add_sims(db, inventory.generated_rows(SIMS), server.clock.now())
    sids = [twilio.supersim.v1.sims.create(iccid=r["iccid"],
                                           registration_code=r["registration_code"]).sid
            for r in rows]
    for sid in sids:
        twilio.supersim.v1.sims(sid).update(fleet=fleet.sid, status="active")
    server.drain()
    with server.runtime.db.read() as db:
        imsis = dict(db.execute(select(SuperSim.sid, SuperSim.imsi)
                                .where(SuperSim.sid.in_(sids))).all())
    sink = active_webhook(account, server, receiver)
    types = [CONNECTION + t for t in ("data-session.started", "data-session.updated",
                                      "data-session.ended")]
    subscribe(account, sink, types)
    receiver.requests.queue.clear()

    hosts = [Host(server, tmp_path / "a.log").start(), Host(server, tmp_path / "b.log").start()]
    dictionary = radius.dictionary()
    local = threading.local()  # a pyrad client is one thread's

    def radius_client(i: int) -> RadiusClient:
        if not hasattr(local, "clients"):
            local.clients = [RadiusClient(server="127.0.0.1", acctport=h.radius_port,
                                          secret=SECRET.encode(), dict=dictionary)
                             for h in hosts]
            for c in local.clients:
                c.timeout, c.retries = 1, 1
        return local.clients[i]

    failovers = Counter[str]()
    api = [simplane.client(h.url, account.sid, account.token) for h in hosts]

    def account_packet(imsi: str, n: int) -> None:
        """The n-th Accounting-Request of the SIM's session, to the host a gateway would
        pick (they alternate); when that one does not answer, to the other."""
        kind = "Start" if n == 0 else "Stop" if n == PACKETS - 1 else "Interim-Update"
        first = (int(imsi[-3:]) + n) % 2
        for i in (first, 1 - first, first, 1 - first):
            if not hosts[i].up.is_set():
                continue
            client = radius_client(i)
            pkt = client.CreateAcctPacket()
            for key, value in {"User-Name": imsi, "3GPP-IMSI": imsi, "Acct-Session-Id":
                               f"s-{imsi}", "Called-Station-Id": "iot.example",
                               "3GPP-SGSN-MCC-MNC": "310410", "Acct-Status-Type": kind,
                               "Acct-Input-Octets": BYTES_UP * n,
                               "Acct-Output-Octets": BYTES_DOWN * n}.items():
                pkt[key] = value
            try:
                assert client.SendPacket(pkt).code == radius_packet.AccountingResponse
                return
            except Timeout:
                failovers["radius"] += 1
        raise AssertionError(f"no host answered packet {n} of {imsi}")

    def write(sid: str, n: int) -> None:
        """An API write, through the host it is sent to, or the other when that one is down."""
        first = n % 2
        for i in (first, 1 - first, first, 1 - first):
            if not hosts[i].up.is_set():
                continue
            try:
                api[i].supersim.v1.sims(sid).update(unique_name=f"{sid[-6:]}-{n}")
                return
            except httpx.HTTPError:
                failovers["api"] += 1
            except TwilioException as exc:  # the twilio client's own connection errors
                if "onnect" not in str(exc):
                    raise
                failovers["api"] += 1
        raise AssertionError(f"no host took write {n} of {sid}")

    errors: list[BaseException] = []

    def run(part: list[str], packets: range) -> None:
        try:
            for n in packets:
                for sid in part:
                    account_packet(imsis[sid], n)
                    write(sid, n)
        except (AssertionError, OSError, httpx.HTTPError, TwilioException) as exc:
            errors.append(exc)

    def phase(packets: range) -> None:
        threads = [threading.Thread(target=run, args=(sids[i::2], packets)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors

    try:
        phase(range(2))
        victim = threading.Thread(target=hosts[0].kill)
        victim.start()  # killed while the next phase runs
        phase(range(2, 4))
        victim.join()
        hosts[0].start()  # the same host, back on its ports
        phase(range(4, PACKETS))

        # every event published reaches the sink: none lost
        with server.runtime.db.read() as db:
            published = set(db.scalars(select(OutboxEvent.id).where(
                OutboxEvent.account_sid == account.sid, OutboxEvent.type.in_(types))))
        assert len(published) >= SIMS * 2  # each session started and ended
        got: Counter[str] = Counter()
        deadline = time.monotonic() + 30
        while not published <= set(got):
            assert time.monotonic() < deadline, f"{len(published - set(got))} events missing"
            try:
                request = receiver.requests.get(timeout=1)
            except queue.Empty:
                continue
            got.update(e["id"] for e in json.loads(request.body))
        # at most the batch a kill interrupted is sent twice (the receiver dedups by id)
        twice = [e for e, n in got.items() if n > 1]
        assert len(twice) <= server.runtime.settings.events_batch_size, twice
        assert set(got) == published

        # every total exact: usage, and the last write of each SIM
        up, down = BYTES_UP * (PACKETS - 1), BYTES_DOWN * (PACKETS - 1)
        client = simplane.client(hosts[1].url, account.sid, account.token)
        end = server.clock.now() + timedelta(hours=1)
        for sid in sids:
            records = client.supersim.v1.usage_records.list(sim=sid, end_time=end)
            assert sum(r.data_upload for r in records) == up, sid
            assert sum(r.data_download for r in records) == down, sid
            assert client.supersim.v1.sims(sid).fetch().unique_name == f"{sid[-6:]}-{PACKETS - 1}"
        [total] = client.supersim.v1.usage_records.list(end_time=end)
        assert (total.data_upload, total.data_download) == (up * SIMS, down * SIMS)
    finally:
        for host in hosts:
            host.stop()
