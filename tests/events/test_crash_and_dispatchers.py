"""Real processes: a server or dispatcher killed with SIGKILL mid-stream loses nothing, and
several dispatchers on one PostgreSQL database never deliver a batch twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from simplane.events import outbox
from tests.events.conftest import ALL_CONNECTION_TYPES, Fleet, active_webhook, deliveries, subscribe
from tests.support import Receiver

SIMPLANE = [sys.executable, "-m", "simplane.cli"]


def dispatcher(server, log: Path) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    # A process that serves nothing reaches public addresses only, unless told otherwise.
    env = dict(os.environ, SIMPLANE_SECRET_KEY=server.runtime.settings.secret_key,
               SIMPLANE_OUTBOUND_ALLOW="loopback")
    return subprocess.Popen(
        [*SIMPLANE, "events", "dispatch", "--database-url", server.runtime.settings.database_url,
         "--log-level", "debug"], env=env, stdout=subprocess.DEVNULL,
        stderr=log.open("ab"))


def serve(server, log: Path) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    """`simplane serve` (API and background worker) on the test database, once it answers."""
    import httpx

    from tests.support import free_port

    port = free_port()
    env = dict(os.environ, SIMPLANE_SECRET_KEY=server.runtime.settings.secret_key)
    proc = subprocess.Popen(
        [*SIMPLANE, "serve", "--port", str(port), "--database-url",
         server.runtime.settings.database_url, "--log-level", "warning"], env=env,
        stdout=subprocess.DEVNULL, stderr=log.open("ab"))
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def ready(log: Path, timeout: float = 60.0) -> None:
    """Wait until a dispatcher process says it is running."""
    deadline = time.monotonic() + timeout
    while "dispatching events" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, f"no dispatcher started: {log.read_text()}"
        time.sleep(0.05)


def sink_state(server, sid: str) -> dict:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from simplane.events.models import EventSink

    with server.runtime.db.read() as db:
        sink = db.scalar(select(EventSink).where(EventSink.sid == sid))
        return {k: getattr(sink, k) for k in ("status", "cursor_txid", "cursor_pk", "attempts",
                                              "last_error", "lease_owner", "lease_until")}


def publish(server, rows) -> list[str]:  # type: ignore[no-untyped-def]
    with server.runtime.db.write() as db:
        return outbox.publish_many(db, rows)


def collect(receiver: Receiver, expected: set[str], timeout: float = 120.0
            ) -> tuple[list[str], list[list[str]]]:
    """Every event id received (with repeats) and each request's ids, until all expected
    ones are in or `timeout` passes."""
    ids: list[str] = []
    batches: list[list[str]] = []
    deadline = time.monotonic() + timeout
    while not expected <= set(ids) and time.monotonic() < deadline:
        try:
            request = receiver.get(timeout=max(0.1, deadline - time.monotonic()))
        except AssertionError:
            break
        batch = [e["id"] for e in deliveries(request)]
        batches.append(batch)
        ids += batch
    return ids, batches


@pytest.mark.parametrize("process", ["serve", "dispatch"])
def test_kill_9_mid_stream_loses_nothing(account, server, tmp_path, process):  # type: ignore[no-untyped-def]
    start = serve if process == "serve" else dispatcher
    receiver = Receiver()
    receiver.delay = 0.005  # slow enough that kills land mid-delivery
    try:
        sink = active_webhook(account, server, receiver)
        subscribe(account, sink, ALL_CONNECTION_TYPES)
        fleet = Fleet(account.sid, sims=50)
        produced: list[str] = []
        received: list[str] = []
        kills = 0
        for _ in range(3):
            proc = start(server, tmp_path / "process.log")
            produced += publish(server, fleet.rows(updates=3))  # 300 events
            first = receiver.get(timeout=30)  # it is delivering...
            received += [e["id"] for e in deliveries(first)]
            proc.send_signal(signal.SIGKILL)  # ...and dies without a chance to tidy up
            proc.wait()
            kills += 1
            produced += publish(server, fleet.rows(updates=1))  # while nobody delivers
            while not receiver.requests.empty():
                received += [e["id"] for e in deliveries(receiver.requests.get())]
        proc = start(server, tmp_path / "process.log")
        try:
            ids, _ = collect(receiver, set(produced) - set(received))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        received += ids
        assert kills == 3
        assert set(received) == set(produced), sink_state(server, sink.sid)
        # at-least-once: a batch cut off by a kill may come again, but never out of order
        first_seen = list(dict.fromkeys(received))
        assert first_seen == produced
    finally:
        receiver.close()


def test_two_dispatchers_never_deliver_a_batch_twice(account, server, tmp_path):  # type: ignore[no-untyped-def]
    """Made for PostgreSQL (FOR UPDATE SKIP LOCKED); SQLite's single writer gets it too."""
    receiver = Receiver()
    receiver.delay = 0.1
    try:
        sinks = [active_webhook(account, server, receiver, path=f"/sink{i}") for i in range(6)]
        for sink in sinks:
            subscribe(account, sink, ALL_CONNECTION_TYPES)
        logs = [tmp_path / "a.log", tmp_path / "b.log"]
        procs = [dispatcher(server, log) for log in logs]
        try:
            for log in logs:
                ready(log)
            produced = publish(server, Fleet(account.sid, sims=100).rows(updates=3))  # 600
            requests = []
            deadline = time.monotonic() + 120
            while len(requests) < 6 * 6 and time.monotonic() < deadline:  # 6 batches a sink
                requests.append(receiver.get(timeout=60))
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)
        while not receiver.requests.empty():
            requests.append(receiver.requests.get())
        per_sink: dict[str, list[str]] = {}
        for request in requests:
            per_sink.setdefault(request.path, []).extend(e["id"] for e in deliveries(request))
        assert sorted(per_sink) == [f"/sink{i}" for i in range(6)]
        for ids in per_sink.values():
            assert ids == produced  # each event once, in order: no batch delivered twice
        owners = Counter()
        for log in logs:
            for line in log.read_text().splitlines():
                if line.startswith("{") and json.loads(line).get("message") == "delivered":
                    owners[log.name] += 1
        assert sum(owners.values()) == len(requests)
        assert set(owners) == {"a.log", "b.log"}  # both did a share of the work
    finally:
        receiver.close()
