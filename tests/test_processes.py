"""Several processes on one database: leases on the roles that run once (core/leases.py),
`serve --workers N`, the SMPP bind's standby, and waking other processes' workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from pyrad import packet as radius_packet
from pyrad.client import Client as RadiusClient
from sqlalchemy import select, update

from simplane.core import leases
from simplane.core.leases import Lease, Role
from simplane.core.models import Callback, RoleLease
from simplane.network import radius
from simplane.wireless.models import Sim
from tests.support import free_port

SIMPLANE = [sys.executable, "-m", "simplane.cli"]
SECRET = "testing123"


def wait(check: Callable[[], Any], timeout: float = 60.0, what: str = "the condition") -> Any:
    """Poll `check` (bounded) until it is true."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never held")
        time.sleep(0.02)
    return found


def name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


# --- leases ---------------------------------------------------------------------------------

def test_a_lease_is_held_by_one_at_a_time_and_released(server):
    db, role = server.runtime.db, name()
    first, second = Lease(db, role, me="host/1/a"), Lease(db, role, me="host/2/b")
    try:
        assert first.acquire() and first.check()
        assert not second.acquire() and not second.check()
        assert leases.holder(db, role) is not None
        first.release()
        assert second.acquire() and second.check()
        assert not first.acquire()
    finally:
        first.release()
        second.release()
    assert leases.holder(db, role) is None


def test_the_lease_of_a_holder_that_died_is_taken_over(server):
    db, role = server.runtime.db, name()
    taker = Lease(db, role, me="host/2/b")
    if db.is_sqlite:
        # a process of this host that no longer exists: at once, whatever its `until`
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout.strip()
        with db.write() as s:
            s.add(RoleLease(name=role, owner=f"{leases.HOST}/{dead}/x", until=time.time() + 600))
        assert taker.acquire()
        taker.release()
        # a process of another host: once its lease has run out
        with db.write() as s:
            s.add(RoleLease(name=role, owner="elsewhere/1/x", until=time.time() + 600))
        assert not taker.acquire()
        with db.write() as s:
            s.execute(update(RoleLease).where(RoleLease.name == role)
                      .values(until=time.time() - 1))
        assert taker.acquire()
        taker.release()
        return
    holder = Lease(db, role)
    assert holder.acquire()
    pid = holder._conn.info.backend_pid
    assert not taker.acquire()
    # the holder's process dies: the server ends its session, and the lock with it
    with psycopg.connect(leases.pg_dsn(db), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    wait(taker.acquire, 10, "takeover")
    assert not holder.check()  # the old holder finds out at its next check
    taker.release()


def test_a_role_runs_once_and_its_standby_takes_over(server):
    db, role = server.runtime.db, name()
    running: list[str] = []
    overlap = threading.Event()

    def runner(who: str) -> Callable[[], Callable[[], None]]:
        def start() -> Callable[[], None]:
            if running:
                overlap.set()
            running.append(who)
            return lambda: running.remove(who)
        return start

    first = Role(db, role, runner("first"), retry=0.05, me="host/1/a").start()
    assert first.held.wait(10)
    second = Role(db, role, runner("second"), retry=0.05, me="host/2/b").start()
    try:
        assert second.standby.wait(10)
        assert running == ["first"] and not second.held.is_set()
        first.stop()  # the holder goes: the standby takes the role
        assert second.held.wait(10)
        assert running == ["second"] and not overlap.is_set()
    finally:
        first.stop()
        second.stop()
    assert running == []


# --- serve --workers ------------------------------------------------------------------------

def serve(server, log: Path, *args: str, port: int | None = None) -> tuple[subprocess.Popen, int]:
    """`simplane serve` on the test database (its secret key), once it answers."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMPLANE_")}
    env.update(SIMPLANE_SECRET_KEY=server.runtime.settings.secret_key,
               SIMPLANE_SMPP_PASSWORD="secret")
    proc = subprocess.Popen(
        [*SIMPLANE, "serve", "--port", str(port), "--database-url",
         server.runtime.settings.database_url, "--log-level", "warning", *args], env=env,
        stdout=subprocess.DEVNULL, stderr=log.open("ab"), cwd=log.parent)

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        except httpx.HTTPError:
            assert proc.poll() is None, log.read_text()
            return False

    wait(up, what=f"serve on {port}")
    return proc, port


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
    proc.wait(timeout=30)


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.fixture
def attached(server, account):  # type: ignore[no-untyped-def]
    """Three active SIMs on the network (they take commands), with their IMSIs."""
    account.client.wireless.v1.rate_plans.create(unique_name="p", data_limit=100_000)
    sids = server.provision(account.sid, 3, status="active", rate_plan="p")
    for sid in sids:
        server.network(sid, "attachment.accepted")
    with server.runtime.db.read() as db:
        imsis = dict(db.execute(select(Sim.sid, Sim.imsi).where(Sim.sid.in_(sids))).all())
    return [(sid, imsis[sid]) for sid in sids]


def test_serve_with_two_workers_serves_from_both_runs_jobs_once_and_counts_radius_once(
        server, account, attached, receiver, tmp_path):
    radius_port = free_port()
    proc, port = serve(server, tmp_path / "serve.log", "--workers", "2", "--radius-port",
                       str(radius_port), "--radius-secret", SECRET)
    try:
        # both processes answer on the one port (each request on a new connection)
        def answering() -> set[str] | None:
            found = {httpx.get(f"http://127.0.0.1:{port}/healthz").headers["Simplane-Process"]
                     for _ in range(20)}
            return found if len(found) == 2 else None

        pids = wait(answering, what="two processes answering")
        assert str(proc.pid) in pids
        assert {str(p) for p in children(proc.pid)} >= pids - {str(proc.pid)}

        # commands created through both: each one's callback sent once
        commands = []
        for i in range(12):
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}",
                                  auth=(account.sid, account.token))
            with client:
                answer = client.post("/wireless/v1/Commands", data={
                    "Sim": attached[i % 3][0], "Command": f"wake {i}",
                    "CallbackUrl": receiver.url})
                assert answer.status_code == 201, answer.text
                commands.append(answer.json()["sid"])

        def delivered() -> bool:
            with server.runtime.db.read() as db:
                return db.scalar(select(Callback.pk).where(
                    Callback.account_sid == account.sid, Callback.status != "delivered")
                    .limit(1)) is None and len(db.scalars(select(Callback.pk).where(
                        Callback.account_sid == account.sid)).all()) == len(commands)

        wait(delivered, what="every callback delivered")

        # RADIUS accounting: bound once, every packet (retransmissions too) counted once
        client = RadiusClient(server="127.0.0.1", acctport=radius_port, secret=SECRET.encode(),
                              dict=radius.dictionary())
        client.timeout, client.retries = 5, 3
        sid, imsi = attached[0]

        def send(kind: str, up: int, down: int) -> None:
            pkt = client.CreateAcctPacket()
            for key, value in {"User-Name": imsi, "Acct-Session-Id": "gw-1", "3GPP-IMSI": imsi,
                               "Called-Station-Id": "iot.example",
                               "Acct-Status-Type": kind, "Acct-Input-Octets": up,
                               "Acct-Output-Octets": down}.items():
                pkt[key] = value
            for _ in range(2):  # sent twice: a retransmission
                reply = client.SendPacket(pkt)
                assert reply.code == radius_packet.AccountingResponse

        send("Start", 0, 0)
        send("Interim-Update", 1000, 5000)
        send("Stop", 1500, 7000)
        [session] = account.client.wireless.v1.sims(sid).data_sessions.list()
        assert session.end is not None
    finally:
        stop(proc)
    # stopped: whatever was in flight has been sent
    got: dict[str, int] = {}
    while not receiver.requests.empty():
        sent = receiver.requests.get_nowait().form["CommandSid"][0]
        got[sent] = got.get(sent, 0) + 1
    assert got == dict.fromkeys(commands, 1)
    with server.runtime.db.read() as db:
        from simplane.network.models import DataSession

        [row] = db.scalars(select(DataSession).where(DataSession.sim_sid == sid)).all()
        assert (row.bytes_up, row.bytes_down) == (1500, 7000)


def test_the_processes_end_with_the_first(server, tmp_path):
    proc, _port = serve(server, tmp_path / "serve.log", "--workers", "3")
    others = wait(lambda: len(children(proc.pid)) >= 2 and children(proc.pid),
                  what="two more processes")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    def gone() -> bool:
        for pid in others:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            # a zombie waits for init to reap it: it is gone all the same
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                return False
        return True

    wait(gone, 30, "the other processes ending")


# --- the SMPP bind: once per database --------------------------------------------------------

@pytest.fixture
def smsc() -> Iterator[Any]:
    from tests.network.smsc import Smsc

    smsc = Smsc(receipts=None)
    yield smsc
    smsc.close()


def test_a_second_serve_smpp_waits_as_standby_and_binds_when_the_first_dies(server, smsc,
                                                                            tmp_path):
    args = ("--smpp", f"127.0.0.1:{smsc.port}", "--smpp-system-id", "simplane")
    first, _ = serve(server, tmp_path / "first.log", *args)
    smsc.wait_for(lambda: smsc.binds == 1)
    second, _ = serve(server, tmp_path / "second.log", *args)
    try:
        wait(lambda: "standby for the role smpp" in (tmp_path / "second.log").read_text(),
             what="the second saying it is a standby")
        assert smsc.binds == 1
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        smsc.wait_for(lambda: smsc.binds == 2)
        assert "took the role smpp" in (tmp_path / "second.log").read_text()
    finally:
        stop(first)
        stop(second)


# --- waking other processes ----------------------------------------------------------------

def test_work_another_process_commits_wakes_the_worker_on_postgresql(server, account,
                                                                     receiver, tmp_path):
    """A callback queued by this process (which runs no worker) is sent by the served one
    within a moment, well before its fallback poll (60 s) comes round."""
    if server.runtime.db.is_sqlite:
        pytest.skip("SQLite has no signal between processes: a fallback poll finds such work")
    from simplane.core import callbacks

    proc, _port = serve(server, tmp_path / "serve.log")
    try:
        time.sleep(1.0)  # let its worker go idle
        with server.runtime.db.write() as db:
            callbacks.enqueue(db, server.runtime, account.sid, receiver.url, "POST", {"A": "1"})
        got = receiver.get(timeout=20)
        assert got.form["A"] == ["1"]
    finally:
        stop(proc)
