"""UsageRecords latency over the hourly rollups that 10 million interim updates leave, for one
account of 100,000 SIMs, against a bare endpoint on the same server in the same run.

    .venv/bin/python bench/usage.py [--sims 100000] [--updates 10000000] [--always-on 1000]
                                    [--requests 2000] [--concurrency 1] [--rounds 3]
                                    [--workdir /tmp/simplane-bench-usage] [--postgres URL]

The database state: `--sims` SIMs with a rate plan on the bench account. `--always-on` of them
report an interim update in every hour of the 30-day window (720 each); the others share the
rest of `--updates`, each in that many distinct random hours. Most SIM-hours are on the home
network; one SIM in seven roams abroad (one of eight countries) in a fifth of its hours and one
in ten is on a national partner network in a tenth. The rollup rows that ingest would write for
those updates (one per SIM, hour, roaming class and country: growth of bytes up and down) are
added with `simplane.network.rollups.add_usage`, the function ingest writes them with, in
batches; the account rollups come from the same call. Then a real `ingest()` of interim updates
(sessions started and updated on 2,000 SIMs, inside the window) runs on top and the script checks
that the rollups grew by exactly the bytes ingest counted.

Measured, with the server as a subprocess (bench/_server.py) and bench/_load.py, rounds
alternating bare / usage:
  sim      GET /wireless/v1/Sims/{Sid}/UsageRecords?Granularity=hourly&Start&End (30 days),
           the default page (50 hours) and PageSize=720 (the whole window in one page), over the
           always-on SIMs. Target p99 ≤ 20 ms.
  account  GET /wireless/v1/UsageRecords?Granularity=daily&Start&End (30 days). Target ≤ 100 ms.
  bare     GET /wireless/v1/BenchBare/{Sid}: the same kernel, a constant body, no database.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ACCOUNT_SID, AUTH_TOKEN, bench_serve, load

from simplane.config import Settings
from simplane.core.runtime import Runtime
from simplane.network.events import NetworkEvent
from simplane.network.ingest import ingest
from simplane.network.models import AccountUsageHour, SimUsageHour
from simplane.network.rollups import add_usage
from simplane.wireless import inventory
from simplane.wireless.models import Sim
from simplane.wireless.service import create_rate_plan

END = datetime(2026, 11, 1, tzinfo=UTC)
HOURS = 30 * 24
START = END - timedelta(hours=HOURS)
HOME = ("home", "")          # generated IMSIs are on 901/42, which has no country
NATIONAL = ("national", "")  # another 901 network
ABROAD = [("international", c) for c in ("DE", "GB", "FR", "ES", "IT", "NL", "US", "MX")]
NETWORKS = {"DE": ("262", "01"), "GB": ("234", "15"), "FR": ("208", "01")}
SLICE_SIMS, SLICE_STEPS = 2000, 11  # ingest() on top: a Start and ten Interim-Updates each
SLICE_EVENTS = SLICE_SIMS * SLICE_STEPS
BATCH = 200_000  # rollup rows per add_usage call (one transaction)


def runtime(url: str) -> Runtime:
    rt = Runtime(Settings(database_url=url, run_workers=False, account_sid=ACCOUNT_SID,
                          auth_token=AUTH_TOKEN))
    rt.ensure_bootstrap()
    return rt


def kept_database(workdir: Path, count: int) -> Path:
    """A SQLite file under `workdir` with `count` active SIMs, provisioned on the first run and
    kept for the next ones."""
    workdir.mkdir(parents=True, exist_ok=True)
    db_file = workdir / f"radius-{count}.db"
    if not db_file.exists():
        rt = runtime(f"sqlite:///{db_file}")
        try:
            provision_active(rt, count, datetime.now(UTC))
        finally:
            rt.close()
        print(f"provisioned {count:,} SIMs ({db_file})", flush=True)
    return db_file


def provision_active(rt: Runtime, count: int, when: datetime) -> list:
    """`count` active SIMs on a plan allowing data everywhere; their (sid, imsi) rows. IMSIs
    are numbered: `inventory.new_imsi` draws ten random digits, and 100,000 draws repeat one
    about two times in five."""
    rows = inventory.generated_rows(count, "active")
    for n, row in enumerate(rows):
        row.imsi = f"{inventory.IMSI_PREFIX}{n:010d}"
    with rt.db.write() as db:
        plan = create_rate_plan(db, ACCOUNT_SID, {
            "UniqueName": "bench", "DataLimit": 2_000_000, "InternationalRoaming": ["data"],
            "NationalRoamingEnabled": True}, when)
        inventory.add_sims(db, ACCOUNT_SID, rows, when, plan.pk)
    with rt.db.read() as db:
        return db.execute(select(Sim.sid, Sim.imsi).order_by(Sim.pk)).all()


def hours_of(rng: random.Random, sim_no: int, always_on: int, count: int) -> list[int]:
    return list(range(HOURS)) if sim_no < always_on else rng.sample(range(HOURS), count)


def where(rng: random.Random, roamer: bool, national: bool) -> tuple[str, str]:
    if roamer and rng.random() < 0.2:
        return rng.choice(ABROAD)
    if national and rng.random() < 0.1:
        return NATIONAL
    return HOME


def synthesise(rt: Runtime, sids: list[str], updates: int, always_on: int) -> int:
    """Add the rollups `updates` interim updates leave (one per SIM-hour); returns rows added."""
    others = max(1, len(sids) - always_on)
    per_sim, extra = divmod(max(0, updates - always_on * HOURS), others)
    if per_sim >= HOURS:
        raise SystemExit(f"{updates:,} updates do not fit in {HOURS} hours of {len(sids)} SIMs")
    rng = random.Random(7)
    usage: dict[tuple, list[int]] = {}
    rows = 0

    def flush() -> None:
        with rt.db.write() as db:
            add_usage(db, usage)
        usage.clear()

    for n, sid in enumerate(sids):
        roamer, national = n % 7 == 3, n % 10 == 5
        count = per_sim + (always_on <= n < always_on + extra)
        for h in hours_of(rng, n, always_on, count):
            up = rng.randrange(1_000, 200_000)
            usage[(sid, ACCOUNT_SID, START + timedelta(hours=h), *where(rng, roamer, national))] = \
                [up, 3 * up, 0, 0]
        if len(usage) >= BATCH:
            rows += len(usage)
            flush()
            print(f"  {n + 1:,} SIMs, {rows:,} rollup rows", flush=True)
    rows += len(usage)
    flush()
    return rows


def ingest_slice(rt: Runtime, imsis: list[str]) -> tuple[int, int]:
    """Sessions started and updated ten times on these SIMs through ingest(); checks the rollups
    grew by what it counted. Returns (events, bytes counted)."""
    def totals() -> int:
        with rt.db.read() as db:
            return int(db.scalar(select(func.sum(SimUsageHour.upload + SimUsageHour.download))))

    before = totals()
    at = START + timedelta(days=10, minutes=17)
    events = 0
    counted = 0
    for step in range(SLICE_STEPS):
        batch = []
        for n, imsi in enumerate(imsis):
            country = ("DE", "GB", "FR")[n % 3]
            mcc, mnc = NETWORKS[country] if n % 4 == 0 else ("901", "42")
            when = at + timedelta(minutes=6 * step)
            if step == 0:
                batch.append(NetworkEvent("session.started", imsi, when, session_id="slice",
                                          mcc=mcc, mnc=mnc, rat="LTE", ip_address="10.0.0.1"))
            else:
                batch.append(NetworkEvent("session.updated", imsi, when, session_id="slice",
                                          bytes_up=1_000 * step, bytes_down=4_000 * step,
                                          packets_up=step, packets_down=3 * step))
        result = ingest(rt, batch)
        assert result.accepted == len(batch), result
        events += len(batch)
        counted += result.bytes_counted
    grown = totals() - before
    assert counted == len(imsis) * 5_000 * (SLICE_STEPS - 1) and grown == counted, (counted, grown)
    return events, counted


def build(url: str, sims: int, updates: int, always_on: int) -> dict:
    started = time.perf_counter()
    rt = runtime(url)
    try:
        rows = provision_active(rt, sims, START)
        sids = [r.sid for r in rows]
        print(f"provisioned {sims:,} SIMs in {time.perf_counter() - started:.1f}s", flush=True)
        t = time.perf_counter()
        rollup_rows = synthesise(rt, sids, updates - SLICE_EVENTS, always_on)
        synth_s = time.perf_counter() - t
        t = time.perf_counter()
        slice_imsis = [r.imsi for r in rows[always_on:always_on + SLICE_SIMS]]
        events, counted = ingest_slice(rt, slice_imsis)
        slice_s = time.perf_counter() - t
        with rt.db.read() as db:
            sim_rows = db.scalar(select(func.count()).select_from(SimUsageHour))
            account_rows = db.scalar(select(func.count()).select_from(AccountUsageHour))
    finally:
        rt.close()
    facts = {"sims": sims, "updates": updates, "always_on": always_on,
             "synthesised_rollup_rows": rollup_rows, "synthesis_s": round(synth_s, 1),
             "ingested_events": events, "ingested_bytes": counted, "ingest_s": round(slice_s, 1),
             "sim_usage_rows": sim_rows, "account_usage_rows": account_rows,
             "always_on_sids": sids[:always_on]}
    print(f"rollups: {rollup_rows:,} synthesised in {synth_s:.0f}s; ingest() of {events:,} "
          f"events on top in {slice_s:.1f}s; SimUsageHour {sim_rows:,} rows, AccountUsageHour "
          f"{account_rows:,} rows", flush=True)
    return facts


def prepared(workdir: Path, args: argparse.Namespace) -> tuple[str, list[str]]:
    """The SQLite database for these options, built once and reused by later runs."""
    key = f"{args.sims}-{args.updates}-{args.always_on}"
    db_file = workdir / f"usage-{key}.db"
    facts_file = workdir / f"usage-{key}.json"
    url = f"sqlite:///{db_file}"
    if not facts_file.exists():
        for p in workdir.glob(f"usage-{key}.db*"):
            p.unlink()
        facts = build(url, args.sims, args.updates, args.always_on)
        facts_file.write_text(json.dumps(facts))
    facts = json.loads(facts_file.read_text())
    print({k: v for k, v in facts.items() if k != "always_on_sids"}, flush=True)
    return url, facts["always_on_sids"]


def measure(url: str, sids: list[str], args: argparse.Namespace, workdir: Path) -> list[dict]:
    window = {"Start": START.strftime("%Y-%m-%dT%H:%M:%SZ"),
              "End": END.strftime("%Y-%m-%dT%H:%M:%SZ")}
    server = bench_serve(url)
    base = server.base_url
    hourly = urlencode({"Granularity": "hourly", **window})
    cases = {
        "bare": [f"{base}/wireless/v1/BenchBare/{sid}" for sid in sids],
        "sim hourly (page of 50 h)": [f"{base}/wireless/v1/Sims/{sid}/UsageRecords?{hourly}"
                                      for sid in sids],
        "sim hourly (PageSize=720)": [
            f"{base}/wireless/v1/Sims/{sid}/UsageRecords?{hourly}&PageSize=720" for sid in sids],
        "account daily": [f"{base}/wireless/v1/UsageRecords?"
                          + urlencode({"Granularity": "daily", **window})],
    }
    slow = max(100, args.requests // 10)
    requests = {"sim hourly (PageSize=720)": slow, "account daily": slow}
    results: dict[str, list[dict]] = {name: [] for name in cases}
    try:
        for r in range(args.rounds):
            names = list(cases) if r % 2 == 0 else list(reversed(cases))
            for name in names:
                n = requests.get(name, args.requests)
                # a short warm-up: some cases take 100 ms a request
                out = load(server, cases[name], n, args.concurrency, workdir,
                           warmup=max(10, n // 20), timeout=1800)
                results[name].append(out)
                print(f"  round {r + 1} {name:28s} {out['rps']:8.1f} req/s  p50 "
                      f"{out['p50_ms']:7.2f} ms  p99 {out['p99_ms']:7.2f} ms  server "
                      f"{out['server_cpu_us']} µs/req", flush=True)
    finally:
        server.stop()
    summary = []
    bare_p50 = statistics.median(o["p50_ms"] for o in results["bare"])
    bare_p99 = statistics.median(o["p99_ms"] for o in results["bare"])
    for name, runs in results.items():
        p50 = statistics.median(o["p50_ms"] for o in runs)
        p99 = statistics.median(o["p99_ms"] for o in runs)
        summary.append({"case": name, "p50_ms": p50, "p99_ms": p99,
                        "best_p99_ms": min(o["p99_ms"] for o in runs),
                        "rps": statistics.median(o["rps"] for o in runs),
                        "server_cpu_us": statistics.median(o["server_cpu_us"] for o in runs),
                        "p50_over_bare": round(p50 / bare_p50, 2),
                        "p99_over_bare": round(p99 / bare_p99, 2)})
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=10_000_000)
    parser.add_argument("--always-on", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/simplane-bench-usage")
    parser.add_argument("--postgres", help="also measure on a fresh PostgreSQL database "
                        "created next to this URL, e.g. postgresql://127.0.0.1:5432/test")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    backends = [("sqlite", *prepared(workdir, args))]
    pg_name = None
    if args.postgres:
        import psycopg

        pg_name = f"simplane_usage_{secrets.token_hex(4)}"
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{pg_name}"')
        pg_url = args.postgres.rsplit("/", 1)[0] + f"/{pg_name}"
        facts = build(pg_url, args.sims, args.updates, args.always_on)
        backends.append(("postgresql", pg_url, facts["always_on_sids"]))
    try:
        for name, url, sids in backends if args.rounds else []:
            print(f"[{name}] concurrency {args.concurrency}, {args.rounds} rounds", flush=True)
            for row in measure(url, sids, args, workdir):
                print(f"[{name}] {row}", flush=True)
    finally:
        if pg_name:
            import psycopg

            with psycopg.connect(args.postgres, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
