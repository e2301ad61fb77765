"""Event Streams figures, each measured against a ceiling taken in the same run.

    .venv/bin/python bench/events.py                 # all four, about 2 minutes
    .venv/bin/python bench/events.py --only publish|throughput|latency|kills

0. publish: `outbox.publish_many` (what ingest calls) in transactions of 1,000 events, next to
   sqlite3's bare executemany of the same rows, already JSON-encoded (the ceiling).
1. throughput: events/s from the outbox to a local webhook receiver (batches of 100), next to
   the receiver's own ceiling (the same batches posted straight at it by one client).
2. latency: at 1,000 events/s published, p50/p99 from publication to receipt as the receiver
   sees them: each event's CloudEvents `time` is stamped just before the transaction that
   publishes it with `outbox.publish_many` (what ingest calls), so the figure covers that commit,
   the dispatcher's polling, reading and sending, not ingest's own work before it.
3. kills: 10 kill -9/restart cycles of the dispatcher while 1,000 events/s are published; the
   set of ids received must equal the set published.

The receiver runs in a process of its own; so does the dispatcher (`simplane events dispatch`),
on a SQLite database in a temporary directory, or on the empty database given with
--database-url (where the publish figure, a comparison with sqlite3, is skipped).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson
from sqlalchemy import text

from simplane.config import Settings
from simplane.core.accounts import create_account
from simplane.core.params import Params
from simplane.core.runtime import Runtime
from simplane.core.sids import new_sid
from simplane.events import outbox, service

UPDATED = "com.twilio.iot.supersim.connection.data-session.updated"


# --- the receiver (its own process) ----------------------------------------------------------

def receiver(port: int, ready) -> None:  # type: ignore[no-untyped-def]
    seen: set[str] = set()
    stats = {"requests": 0, "events": 0, "latencies": []}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            now = time.time()
            try:
                events = orjson.loads(body)
            except orjson.JSONDecodeError:  # cut short: its sender was killed mid-request
                return
            with lock:
                stats["requests"] += 1
                stats["events"] += len(events)
                for e in events:
                    seen.add(e["id"])
                    if self.path.startswith("/latency"):
                        sent = datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                            tzinfo=UTC)
                        stats["latencies"].append(now - sent.timestamp())
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            with lock:
                if self.path == "/reset":
                    seen.clear()
                    stats.update(requests=0, events=0, latencies=[])
                    body = b"{}"
                elif self.path == "/ids":
                    body = orjson.dumps(sorted(seen))
                else:
                    lat = sorted(stats["latencies"])
                    body = orjson.dumps({
                        "requests": stats["requests"], "events": stats["events"],
                        "distinct": len(seen),
                        "p50": lat[len(lat) // 2] if lat else None,
                        "p99": lat[int(len(lat) * 0.99)] if lat else None,
                        "max": lat[-1] if lat else None})
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    ready.set()
    server.serve_forever()


# --- set-up ----------------------------------------------------------------------------------

def event_rows(account_sid: str, sims: list[str], count: int) -> list[dict]:
    rows = []
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    for _ in range(count):
        sim = random.choice(sims)
        up, down = random.randrange(10**6), random.randrange(10**6)
        data = {"event_sid": new_sid("EZ"), "event_type": UPDATED, "account_sid": account_sid,
                "sim_sid": sim, "sim_iccid": "89883070000005381783", "timestamp": stamp,
                "imsi": "732123200563187", "apn": "super", "rat_type": "4G LTE",
                "network": {"mcc": "310", "mnc": "260", "friendly_name": "T-Mobile",
                            "iso_country": "US", "sid": None},
                "data_session_sid": "PI" + sim[2:], "data_session_start_time": stamp,
                "data_session_update_start_time": stamp, "data_session_update_end_time": stamp,
                "data_upload": up, "data_download": down, "data_total": up + down,
                "data_session_data_upload": up, "data_session_data_download": down,
                "data_session_data_total": up + down}
        rows.append({"account_sid": account_sid, "type": UPDATED, "data": data,
                     "subject": sim, "time": datetime.now(UTC)})
    return rows


class Bench:
    def __init__(self, workdir: Path, receiver_url: str, database_url: str | None = None) -> None:
        from cryptography.fernet import Fernet

        self.key = Fernet.generate_key().decode()
        self.url = database_url or f"sqlite:///{workdir / 'events.db'}"
        self.runtime = Runtime(Settings(database_url=self.url, secret_key=self.key,
                                        run_workers=False))
        self.receiver_url = receiver_url
        self.account = ""
        self.sims = [new_sid("HS") for _ in range(1000)]
        self.workdir = workdir

    def sink(self, path: str) -> None:
        """An active webhook sink subscribed to data-session.updated (the rest of the set-up
        is tested elsewhere: here it is the delivery that is measured)."""
        now = self.runtime.clock.now()
        with self.runtime.db.write() as db:  # an account per figure: its own events only
            self.account = create_account(db, self.runtime.box, self.runtime.clock).sid
            sink = service.create_sink(db, self.runtime.box, self.account, Params({
                "Description": "bench", "SinkType": "webhook",
                "SinkConfiguration": {"destination": self.receiver_url + path}}, {}), now)
            sink.status = "active"
            db.flush()
            service.create_subscription(db, self.account, Params({
                "Description": "bench", "SinkSid": sink.sid,
                "Types": [json.dumps({"type": UPDATED})]}, {}), now)

    def publish(self, count: int, chunk: int = 10_000) -> list[str]:
        ids: list[str] = []
        for start in range(0, count, chunk):
            with self.runtime.db.write() as db:
                ids += outbox.publish_many(db, event_rows(self.account, self.sims,
                                                          min(chunk, count - start)))
        if not self.url.startswith("sqlite"):  # fresh statistics, as autovacuum would have
            with self.runtime.db.write() as db:
                db.execute(text("ANALYZE event_outbox"))
        return ids

    def dispatcher(self) -> subprocess.Popen:
        env = dict(os.environ, SIMPLANE_SECRET_KEY=self.key)
        return subprocess.Popen(
            [sys.executable, "-m", "simplane.cli", "events", "dispatch", "--database-url",
             self.url, "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)

    def stats(self) -> dict:
        return httpx.get(self.receiver_url + "/stats").json()

    def reset(self) -> None:
        httpx.get(self.receiver_url + "/reset")

    def wait_for(self, distinct: int, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if stats["distinct"] >= distinct or time.monotonic() > deadline:
                return stats
            time.sleep(0.05)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


# --- the figures -----------------------------------------------------------------------------

def publishing(bench: Bench, events: int) -> dict:
    """publish_many in transactions of 1,000 events, next to the ceiling: sqlite3's own
    executemany of the same rows, already encoded, into a copy of the table."""
    import sqlite3

    bench.sink("/publish")
    rows = event_rows(bench.account, bench.sims, events)
    began = time.perf_counter()
    for start in range(0, events, 1000):
        with bench.runtime.db.write() as db:
            outbox.publish_many(db, rows[start:start + 1000])
    rate = events / (time.perf_counter() - began)
    raw = [(r["data"]["event_sid"], r["account_sid"], r["type"], r["subject"],
            outbox.event_time(r["time"]), orjson.dumps(r["data"]).decode(), time.time())
           for r in rows]
    conn = sqlite3.connect(bench.workdir / "bare.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE outbox (pk INTEGER PRIMARY KEY AUTOINCREMENT, txid BIGINT NOT "
                 "NULL DEFAULT 0, id TEXT, account_sid TEXT, type TEXT, subject TEXT, time TEXT, "
                 "data TEXT, published_at REAL)")
    conn.execute("CREATE INDEX a ON outbox (account_sid, txid, pk)")
    conn.execute("CREATE INDEX b ON outbox (txid, pk)")
    began = time.perf_counter()
    for start in range(0, events, 1000):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO outbox (id, account_sid, type, subject, time, data, "
                         "published_at) VALUES (?, ?, ?, ?, ?, ?, ?)", raw[start:start + 1000])
        conn.execute("COMMIT")
    ceiling = events / (time.perf_counter() - began)
    conn.close()
    return {"events": events, "publish_many_events_per_s": round(rate),
            "bare_executemany_events_per_s": round(ceiling), "ratio": round(rate / ceiling, 3)}


def throughput(bench: Bench, events: int) -> dict:
    bench.reset()
    bench.sink("/throughput")
    # The ceiling: the receiver fed the same 100-event batches by one keep-alive client.
    rows = event_rows(bench.account, bench.sims, 100)
    batch = orjson.dumps([{"specversion": "1.0", "type": r["type"], "source": "/bench",
                           "id": r["data"]["event_sid"], "time": outbox.event_time(r["time"]),
                           "datacontenttype": "application/json", "data": r["data"]}
                          for r in rows])
    requests = max(200, events // 100 // 4)
    with httpx.Client() as client:
        began = time.perf_counter()
        for _ in range(requests):
            client.post(bench.receiver_url + "/ceiling", content=batch,
                        headers={"Content-Type": "application/json"})
        ceiling = requests * 100 / (time.perf_counter() - began)
    bench.reset()
    bench.publish(events)
    proc = bench.dispatcher()
    try:
        bench.wait_for(1, 60)  # started and delivering
        began, start_count = time.perf_counter(), bench.stats()["events"]
        stats = bench.wait_for(events, 600)
        rate = (stats["events"] - start_count) / (time.perf_counter() - began)
    finally:
        stop(proc)
    assert stats["distinct"] == events, stats
    return {"events": events, "dispatch_events_per_s": round(rate),
            "receiver_ceiling_events_per_s": round(ceiling), "ratio": round(rate / ceiling, 3)}


def produce(bench: Bench, rate: int, seconds: float, ids: list[str]) -> None:
    """Publish `rate` events/s in ticks of 10 ms for `seconds`."""
    per_tick = max(1, rate // 100)
    began = time.perf_counter()
    tick = 0
    while time.perf_counter() - began < seconds:
        with bench.runtime.db.write() as db:
            ids += outbox.publish_many(db, event_rows(bench.account, bench.sims, per_tick))
        tick += 1
        delay = began + tick * 0.01 - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


def latency(bench: Bench, seconds: float) -> dict:
    bench.reset()
    bench.sink("/latency")
    proc = bench.dispatcher()
    try:
        time.sleep(2)  # start-up (imports, migrations check) is not what is measured
        ids: list[str] = []
        produce(bench, 1000, seconds, ids)
        stats = bench.wait_for(len(ids), 60)
    finally:
        stop(proc)
    return {"published": len(ids), "received": stats["distinct"],
            "published_per_s": round(len(ids) / seconds),
            "p50_s": round(stats["p50"], 4), "p99_s": round(stats["p99"], 4),
            "max_s": round(stats["max"], 4)}


def kills(bench: Bench, cycles: int) -> dict:
    bench.reset()
    bench.sink("/kills")
    ids: list[str] = []
    producer = threading.Thread(target=produce, args=(bench, 1000, cycles * 3.0 + 2, ids))
    producer.start()
    killed = 0
    proc = bench.dispatcher()
    for _ in range(cycles):
        time.sleep(random.uniform(1.5, 3.0))  # let it get going, then kill it anywhere
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed += 1
        proc = bench.dispatcher()
    producer.join()
    stats = bench.wait_for(len(ids), 120)
    stop(proc)
    received = set(httpx.get(bench.receiver_url + "/ids").json())
    return {"kill_9_cycles": killed, "published": len(ids), "received_distinct": len(received),
            "lost": len(set(ids) - received), "duplicates": stats["events"] - len(received)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["publish", "throughput", "latency", "kills"])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--database-url", help="an empty database (default: a new SQLite file)")
    args = parser.parse_args()
    ready = multiprocessing.Event()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rx = multiprocessing.Process(target=receiver, args=(port, ready), daemon=True)
    rx.start()
    ready.wait(10)
    with tempfile.TemporaryDirectory(prefix="simplane-events-") as tmp:
        bench = Bench(Path(tmp), f"http://127.0.0.1:{port}", args.database_url)
        try:
            if args.only in (None, "publish") and bench.url.startswith("sqlite"):
                print("publish", json.dumps(publishing(bench, 100_000)), flush=True)
            if args.only in (None, "throughput"):
                print("throughput", json.dumps(throughput(bench, args.events)), flush=True)
            if args.only in (None, "latency"):
                print("latency", json.dumps(latency(bench, args.seconds)), flush=True)
            if args.only in (None, "kills"):
                print("kills", json.dumps(kills(bench, args.cycles)), flush=True)
        finally:
            bench.runtime.close()
            rx.terminate()


if __name__ == "__main__":
    main()
