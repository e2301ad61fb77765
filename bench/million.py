"""A million SIMs on PostgreSQL: provisioning, fetch, paging, memory and UsageRecords at scale,
and `serve --workers 1` against `--workers 2`.

    .venv/bin/python bench/million.py [--postgres URL] [--sims 1000000] [--rollup-sims 100000]
                                      [--requests 4000] [--drop]

The database is `simplane_million` on the PostgreSQL server of `--postgres`; it is kept between
runs (a run provisions only the SIMs missing, and seeds rollups only once) unless `--drop`.

1. **Provisioning** through `simplane sims provision --count N` (its progress bar on stderr),
   against a ceiling in the same run: COPY of as many rows of the same columns into a copy of
   the SIM table with its indexes (`CREATE TABLE … (LIKE wireless_sims INCLUDING ALL)`), the
   database's own bulk rate.
2. **Fetch a SIM**: `bench/_load.py` (aiohttp, 16 connections) over 2,000 random SIDs: req/s,
   p50/p99, server CPU per request (every process of the server), for `--workers 1` and `2`.
3. **Paging**: `Sims?PageSize=1000` first page and last page (its PageToken, as following
   next_page_url gets there), nine times each interleaved on one connection: last/first
   (target ≤ 1.5).
4. **Memory**: VmRSS of each server process after all of it (target ≤ 300 MB).
5. **UsageRecords**: 30 days of hourly rollups for `--rollup-sims` SIMs, seeded in SQL
   (generate_series); `GET /wireless/v1/Sims/{Sid}/UsageRecords` for 30 days, random SIMs:
   p50/p99 (target p99 ≤ 20 ms), against the same rollup query run alone over psycopg (the
   database's share of it: the same rows read by psycopg).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PYTHON,
    ServerProcess,
    free_port,
    load,
    postgres_database,
    server_env,
)

ROOT = Path(__file__).resolve().parents[1]
DB_NAME = "simplane_million"
ROLLUP_DAYS = 30


def plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def say(text: str) -> None:
    print(text, flush=True)


def sims_in(url: str) -> int:
    with psycopg.connect(plain(url)) as conn:
        try:
            row = conn.execute("SELECT count(*) FROM wireless_sims WHERE account_sid = %s",
                               (ACCOUNT_SID,)).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
        return int(row[0]) if row else 0


def provision(url: str, target: int) -> float | None:
    """The SIMs missing, through `simplane sims provision`; its time, or None if none was."""
    have = sims_in(url)
    if have >= target:
        say(f"provisioning: {have:,} SIMs already there (reused)")
        return None
    env = {**server_env(url), "PYTHONPATH": str(ROOT)}
    os.environ.update(server_env(url))
    from simplane.config import Settings
    from simplane.core.runtime import Runtime

    rt = Runtime(Settings(database_url=url, run_workers=False))  # migrates
    rt.ensure_bootstrap()
    rt.close()
    count = target - have
    say(f"provisioning {count:,} SIMs through `simplane sims provision`…")
    started = time.perf_counter()
    subprocess.run([PYTHON, "-m", "simplane.cli", "sims", "provision", "--count", str(count),
                    "--account", ACCOUNT_SID, "--database-url", url], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    say(f"provisioned {count:,} SIMs in {seconds:.1f} s ({count / seconds:,.0f}/s; the "
        "command ends with ANALYZE)")
    return seconds


def copy_ceiling(url: str, count: int) -> float:
    """COPY `count` rows like the provisioned ones into a copy of the SIM table (its indexes
    too); seconds."""
    from simplane.core.sids import new_sid
    from simplane.wireless.inventory import IMSI_PREFIX, generated_rows, new_registration_code

    now = datetime.now(UTC)
    with psycopg.connect(plain(url)) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_sims")
        conn.execute("CREATE TABLE bench_copy_sims (LIKE wireless_sims INCLUDING ALL)")
        conn.commit()
        columns = ("sid", "account_sid", "iccid", "imsi", "registration_code", "status",
                   "commands_callback_method", "sms_fallback_method", "sms_method",
                   "voice_fallback_method", "voice_method", "date_status_changed",
                   "date_created", "date_updated")
        started = time.perf_counter()
        iccids = [row.iccid for row in generated_rows(count)]
        with conn.cursor() as cur, cur.copy(
                f"COPY bench_copy_sims ({', '.join(columns)}) FROM STDIN") as copy:
            for n, iccid in enumerate(iccids):
                copy.write_row((new_sid("DE"), ACCOUNT_SID, iccid, f"{IMSI_PREFIX}{n:010d}",
                                new_registration_code(), "new", "POST", "POST", "POST", "POST",
                                "POST", now, now, now))
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE bench_copy_sims")
        conn.commit()
    return seconds


def seed_rollups(url: str, sims: int, end: datetime) -> datetime:
    """30 days of hourly rollups (one row per SIM and hour) for the first `sims` SIMs, and
    their account's, up to `end`; once (a later run reuses them): where they end."""
    start = end - timedelta(days=ROLLUP_DAYS)
    with psycopg.connect(plain(url)) as conn:
        have = conn.execute("SELECT count(*), max(hour) FROM network_account_usage_hours"
                            ).fetchone()
        seeded = conn.execute("SELECT count(*) FROM (SELECT DISTINCT sim_sid FROM "
                              "network_sim_usage_hours WHERE hour = %s) s",
                              (have[1] if have else None,)).fetchone()
        if have and have[0] == ROLLUP_DAYS * 24 and seeded and seeded[0] == sims:
            say(f"rollups: {ROLLUP_DAYS} days for {sims:,} SIMs already there (reused)")
            return have[1] + timedelta(hours=1)
        say(f"seeding {ROLLUP_DAYS} days of hourly rollups for {sims:,} SIMs "
            f"({sims * ROLLUP_DAYS * 24:,} rows) in SQL…")
        started = time.perf_counter()
        conn.execute("TRUNCATE network_sim_usage_hours, network_account_usage_hours")
        # in primary-key order (SIM, hour): the index grows at its right edge
        conn.execute("""
            INSERT INTO network_sim_usage_hours (sim_sid, hour, roaming, country, account_sid,
                upload, download, commands_from_sim, commands_to_sim)
            SELECT s.sid, h, 'home', 'US', s.account_sid, 1000 + (s.pk %% 97), 5000, 0, 0
            FROM (SELECT sid, pk, account_sid FROM (SELECT sid, pk, account_sid FROM
                  wireless_sims ORDER BY pk LIMIT %s) f ORDER BY sid) s
            CROSS JOIN LATERAL generate_series(%s::timestamptz,
                %s::timestamptz - interval '1 hour', interval '1 hour') h""",
                     (sims, start, end))
        conn.execute("""
            INSERT INTO network_account_usage_hours (account_sid, hour, roaming, country,
                upload, download, commands_from_sim, commands_to_sim)
            SELECT f.account_sid, h, 'home', 'US', f.up, f.down, 0, 0
            FROM (SELECT account_sid, sum(1000 + pk %% 97) AS up, 5000 * count(*) AS down
                  FROM (SELECT pk, account_sid FROM wireless_sims ORDER BY pk LIMIT %s) s
                  GROUP BY account_sid) f
            CROSS JOIN generate_series(%s::timestamptz, %s::timestamptz - interval '1 hour',
                                       interval '1 hour') h""", (sims, start, end))
        conn.commit()
        conn.execute("ANALYZE network_sim_usage_hours")
        say(f"seeded in {time.perf_counter() - started:.0f} s")
    return end


class Serve(ServerProcess):
    """`simplane serve --workers N` on the database; CPU and memory of all its processes."""

    def __init__(self, url: str, workers: int) -> None:
        port = free_port()
        argv = [PYTHON, "-m", "simplane.cli", "serve", "--database-url", url, "--port",
                str(port), "--log-level", "warning", "--workers", str(workers)]
        os.environ["PYTHONPATH"] = str(ROOT)
        super().__init__(argv, url, port)
        deadline = time.monotonic() + 60
        while len(self.pids()) < workers:  # the others are up when they answer too
            if time.monotonic() > deadline:
                raise RuntimeError("the other processes did not start")
            time.sleep(0.2)
        seen: set[str] = set()
        while len(seen) < workers and time.monotonic() < deadline:
            seen.add(httpx.get(self.base_url + "/healthz").headers["Simplane-Process"])

    def pids(self) -> list[int]:
        pid = self.proc.pid
        kids = Path(f"/proc/{pid}/task/{pid}/children")
        others = [int(p) for p in kids.read_text().split()] if kids.exists() else []
        # the spawn context's resource tracker is a child too: count web servers only
        return [pid, *(p for p in others if "simplane" in _cmdline(p) or _is_worker(p))]

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def rss(self) -> list[float]:
        out = []
        for pid in self.pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out.append(int(line.split()[1]) / 1024)
        return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except FileNotFoundError:
        return ""


def _is_worker(pid: int) -> bool:
    return "resource_tracker" not in _cmdline(pid)


def random_sids(url: str, n: int) -> list[str]:
    with psycopg.connect(plain(url)) as conn:
        return [r[0] for r in conn.execute(
            "SELECT sid FROM wireless_sims TABLESAMPLE SYSTEM (1) LIMIT %s", (n,)).fetchall()]


def timed(client: httpx.Client, url: str, rounds: int = 1) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        answer = client.get(url)
        assert answer.status_code == 200, answer.text
    return (time.perf_counter() - started) / rounds * 1000


def paging(server: Serve, url: str) -> tuple[float, float]:
    """Median ms of the first and the last page of 1,000 SIMs (nine each, interleaved)."""
    with psycopg.connect(plain(url)) as conn:
        row = conn.execute("SELECT pk FROM wireless_sims WHERE account_sid = %s ORDER BY pk "
                           "DESC OFFSET 1000 LIMIT 1", (ACCOUNT_SID,)).fetchone()
        total = conn.execute("SELECT count(*) FROM wireless_sims WHERE account_sid = %s",
                             (ACCOUNT_SID,)).fetchone()
    assert row and total
    last_page = total[0] // 1000 - 1
    first = "/wireless/v1/Sims?PageSize=1000"
    last = f"/wireless/v1/Sims?PageSize=1000&Page={last_page}&PageToken=PA{row[0]}"
    firsts, lasts = [], []
    with httpx.Client(base_url=server.base_url, auth=(ACCOUNT_SID, AUTH_TOKEN),
                      timeout=60) as client:
        tail = client.get(last).json()
        assert len(tail["sims"]) == 1000 and tail["meta"]["next_page_url"] is None, tail["meta"]
        timed(client, first)
        for _ in range(9):
            firsts.append(timed(client, first))
            lasts.append(timed(client, last))
    return statistics.median(firsts), statistics.median(lasts)


def usage(server: Serve, url: str, sims: int, end: datetime, n: int
          ) -> tuple[dict, dict, float]:
    """UsageRecords over 30 days of random seeded SIMs through the API (p50/p99), a fetch of
    the same SIMs interleaved with them (what any request costs here now), and the rollup rows
    read alone over psycopg (p99)."""
    with psycopg.connect(plain(url)) as conn:
        seeded = [r[0] for r in conn.execute(
            "SELECT sid FROM wireless_sims ORDER BY pk LIMIT %s", (sims,)).fetchall()]
    picks = random.sample(seeded, min(n, len(seeded)))
    start = end - timedelta(days=ROLLUP_DAYS)
    window = f"Start={start:%Y-%m-%dT%H:%M:%SZ}&End={end:%Y-%m-%dT%H:%M:%SZ}"
    records, fetches = [], []
    with httpx.Client(base_url=server.base_url, auth=(ACCOUNT_SID, AUTH_TOKEN),
                      timeout=60) as client:
        for sid in picks[:20]:
            timed(client, f"/wireless/v1/Sims/{sid}/UsageRecords?{window}")
        for sid in picks:
            records.append(timed(client, f"/wireless/v1/Sims/{sid}/UsageRecords?{window}"))
            fetches.append(timed(client, f"/wireless/v1/Sims/{sid}"))
    raw = []
    with psycopg.connect(plain(url)) as conn:
        for sid in picks:
            t0 = time.perf_counter()
            conn.execute("SELECT hour, roaming, country, upload, download, commands_from_sim, "
                         "commands_to_sim FROM network_sim_usage_hours WHERE sim_sid = %s "
                         "AND hour >= %s AND hour < %s", (sid, start, end)).fetchall()
            raw.append((time.perf_counter() - t0) * 1000)
    return percentiles(records), percentiles(fetches), percentiles(raw)["p99"]


def percentiles(values: list[float]) -> dict:
    values = sorted(values)
    return {"p50": values[len(values) // 2], "p99": values[int(len(values) * .99)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--sims", type=int, default=1_000_000)
    parser.add_argument("--rollup-sims", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")
    parser.add_argument("--database", default=DB_NAME, help="the database's name")
    parser.add_argument("--only", choices=["provision", "ceiling", "usage"], default=None)
    args = parser.parse_args()
    say(f"load: {os.getloadavg()[0]:.2f}")
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / "simplane-bench-million"
    workdir.mkdir(exist_ok=True)
    os.chdir(workdir)  # where simplane.key (the bootstrap account's sealed token) is kept
    with postgres_database(args.postgres, args.database, keep=not args.drop) as url:
        url = url.replace("postgresql://", "postgresql+psycopg://")
        seconds = provision(url, args.sims)
        if args.only == "ceiling":
            ceiling = copy_ceiling(url, args.sims)
            say(f"ceiling: COPY of {args.sims:,} rows into a copy of the table: {ceiling:.1f} s")
            return
        if seconds is not None:
            ceiling = copy_ceiling(url, args.sims)
            say(f"  ceiling: COPY of {args.sims:,} rows into a copy of the table: {ceiling:.1f} s; "
                f"simplane takes {seconds / ceiling:.1f}x")
        if args.only == "provision":
            return
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        end = seed_rollups(url, args.rollup_sims, end)
        sids = random_sids(url, 2000)
        for workers in (1,) if args.only == "usage" else (1, 2):
            server = Serve(url, workers)
            try:
                urls = [f"{server.base_url}/wireless/v1/Sims/{sid}" for sid in sids]
                results = [load(server, urls, args.requests if args.only != "usage" else 500,
                                16, workdir, 300, 600) for _ in range(2)]
                best = max(results, key=lambda r: r["rps"])
                runs = ", ".join(f"{r['rps']:,.0f}" for r in results)
                say(f"--workers {workers}: fetch a SIM {best['rps']:,.0f} req/s, p50 "
                    f"{best['p50_ms']:.1f} ms, p99 {best['p99_ms']:.1f} ms, server CPU "
                    f"{best['server_cpu_us'] / 1000:.2f} ms/request (runs: {runs} req/s)")
                if workers == 1:
                    first, last = paging(server, url)
                    say(f"  Sims?PageSize=1000: first page {first:.1f} ms, last page "
                        f"{last:.1f} ms: last/first {last / first:.2f} (target <= 1.5)")
                    records, fetch, raw = usage(server, url, args.rollup_sims, end, 500)
                    say(f"  UsageRecords of 30 days (hourly rollups of {args.rollup_sims:,} "
                        f"SIMs), one request at a time: p50 {records['p50']:.1f} ms, p99 "
                        f"{records['p99']:.1f} ms (target <= 20); a fetch of the same SIMs "
                        f"between them p50 {fetch['p50']:.1f} ms, p99 {fetch['p99']:.1f} ms "
                        f"(usage/fetch p99 {records['p99'] / fetch['p99']:.2f}); the rollup "
                        f"rows read alone over psycopg p99 {raw:.1f} ms")
                say(f"  RSS after it all: {', '.join(f'{r:.0f} MB' for r in server.rss())} "
                    "(target <= 300 MB per process)")
            finally:
                server.stop()


if __name__ == "__main__":
    main()
