"""Console pages' server time at fleet scale, on SQLite.

100,000 Wireless SIMs on one account, 30 days of hourly usage rollups for 10,000 of them (with a
data session and a SIM state each), then p50/p99 of the time the application takes to answer
(in-process ASGI, no network) for the SIM list (first page, a status filter, an ICCID search, a
page deep in the list), a SIM's page and the overview. Ceilings, measured in the same run:

- a bare page: the same uvicorn-less ASGI path, a Starlette route rendering a Jinja2 template of
  the same size with no database, i.e. the framework's own cost;
- the raw SQLite time of the list page's query (sqlite3, no SQLAlchemy, no rendering).

    .venv/bin/python bench/console.py [--sims 100000] [--with-usage 10000] [--requests 200]

The database is kept in $TMPDIR/simplane-bench-console and reused by a later run with the
same sizes (building it takes a few minutes: 7.2 million usage rows).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ACCOUNT_SID = "AC" + "c" * 32
AUTH_TOKEN = "bench-console-" + "0" * 20
NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)


def build(db_file: Path, sims: int, with_usage: int) -> None:
    from simplane.config import Settings
    from simplane.core.clock import ManualClock
    from simplane.core.runtime import Runtime
    from simplane.wireless import inventory, service

    url = f"sqlite:///{db_file}"
    runtime = Runtime(Settings(database_url=url, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                               run_workers=False), clock=ManualClock(NOW))
    runtime.ensure_bootstrap()
    with runtime.db.write() as db:
        plan = service.create_rate_plan(db, ACCOUNT_SID, {"UniqueName": "bench"}, NOW)
        plan_pk = plan.pk
    statuses = ["active"] * 6 + ["suspended", "ready", "new", "deactivated"]
    done = 0
    while done < sims:
        n = min(10_000, sims - done)
        with runtime.db.write() as db:
            rows = [inventory.SimRow(iccid=inventory.new_iccid(), status=statuses[(done + i) % 10],
                                     unique_name=f"device-{done + i:06d}")
                    for i in range(n)]
            inventory.add_sims(db, ACCOUNT_SID, rows, NOW, plan_pk)
        done += n
    runtime.close()

    raw = sqlite3.connect(db_file)
    sids = [r[0] for r in raw.execute(
        "SELECT sid FROM wireless_sims WHERE status = 'active' ORDER BY pk LIMIT ?", (with_usage,))]
    start = NOW.replace(minute=0) - timedelta(days=30)
    hours = [start + timedelta(hours=h) for h in range(30 * 24)]
    fmt = "%Y-%m-%d %H:%M:%S.000000"
    account: dict[tuple[str, str], list[int]] = {}
    rng = random.Random(7)
    for i, sid in enumerate(sids):
        rows = []
        for h in hours:
            roaming = "international" if (i + h.hour) % 17 == 0 else "home"
            up, down = rng.randrange(1000, 50_000), rng.randrange(5000, 500_000)
            rows.append((sid, h.strftime(fmt), roaming, "DE" if roaming == "home" else "GB",
                         ACCOUNT_SID, up, down, 0, 0))
            total = account.setdefault((h.strftime(fmt), roaming), [0, 0])
            total[0] += up
            total[1] += down
        raw.executemany("INSERT INTO network_sim_usage_hours (sim_sid, hour, roaming, country, "
                        "account_sid, upload, download, commands_from_sim, commands_to_sim) "
                        "VALUES (?,?,?,?,?,?,?,?,?)", rows)
        used = sum(r[5] + r[6] for r in rows)
        raw.execute("INSERT INTO network_sim_states (sim_sid, account_sid, attached, mcc, mnc, "
                    "roaming, country, changed_at, period, used_home, used_national, "
                    "used_international) VALUES (?,?,1,'901','42','home','DE',?,?,?,0,0)",
                    (sid, ACCOUNT_SID, NOW.strftime(fmt), "2026-03-01T00:00:00", used))
        raw.execute("INSERT INTO network_data_sessions (sid, account_sid, sim_sid, session_id, "
                    "status, roaming, lat, lon, bytes_up, bytes_down, packets_up, packets_down, "
                    "start, last_updated, window_start, window_up, window_down) VALUES "
                    "(?,?,?,?,'open','home',?,?,0,0,0,0,?,?,?,0,0)",
                    ("BE" + f"{i:032x}", ACCOUNT_SID, sid, f"s{i}", 50 + rng.random() * 5,
                     5 + rng.random() * 10, NOW.strftime(fmt), NOW.strftime(fmt),
                     NOW.strftime(fmt)))
        if i % 1000 == 999:
            raw.commit()
    raw.executemany("INSERT INTO network_account_usage_hours (account_sid, hour, roaming, country, "
                    "upload, download, commands_from_sim, commands_to_sim) "
                    "VALUES (?,?,?,?,?,?,0,0)",
                    [(ACCOUNT_SID, hour, roaming, "DE" if roaming == "home" else "GB", up, down)
                     for (hour, roaming), (up, down) in account.items()])
    raw.commit()
    raw.execute("ANALYZE")
    raw.close()


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sims", type=int, default=100_000)
    parser.add_argument("--with-usage", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "simplane-bench-console")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    db_file = args.workdir / "console.db"
    marker = args.workdir / "sizes"
    sizes = f"{args.sims} {args.with_usage}"
    if not (db_file.exists() and marker.exists() and marker.read_text() == sizes):
        for stale in args.workdir.glob("console.db*"):
            stale.unlink()
        started = time.perf_counter()
        build(db_file, args.sims, args.with_usage)
        marker.write_text(sizes)
        print(f"built {db_file} in {time.perf_counter() - started:.0f} s")

    os.environ.pop("SIMPLANE_SECRET_KEY", None)
    from fastapi.testclient import TestClient
    from jinja2 import Template
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from simplane.app import create_app
    from simplane.config import Settings
    from simplane.core.clock import ManualClock
    from simplane.core.runtime import Runtime

    runtime = Runtime(Settings(database_url=f"sqlite:///{db_file}", account_sid=ACCOUNT_SID,
                               auth_token=AUTH_TOKEN, run_workers=False),
                      clock=ManualClock(NOW))
    client = TestClient(create_app(runtime))
    token = re.search(r'name="csrf" value="([^"]+)"',
                      client.get("/console/sign-in").text).group(1)  # type: ignore[union-attr]
    signed = client.post("/console/sign-in", data={"csrf": token, "username": ACCOUNT_SID,
                                                   "password": AUTH_TOKEN},
                         follow_redirects=False)
    assert signed.status_code == 303, signed.text

    raw = sqlite3.connect(db_file)
    with_usage = [r[0] for r in raw.execute("SELECT sim_sid FROM network_sim_states")]
    deep = raw.execute("SELECT pk FROM wireless_sims ORDER BY pk LIMIT 1 OFFSET ?",
                       (args.sims // 2,)).fetchone()[0]
    iccid = raw.execute("SELECT iccid FROM wireless_sims WHERE pk = ?", (deep,)).fetchone()[0]
    rng = random.Random(1)

    page_size = len(client.get("/console/sims").text)
    bare_template = Template("<html><body>{% for i in rows %}<tr><td>{{ i }}</td>"
                             "<td>{{ i * 3 }}</td></tr>{% endfor %}</body></html>")
    rows = list(range(page_size // 30))

    def bare(_request):  # type: ignore[no-untyped-def]
        return HTMLResponse(bare_template.render(rows=rows))

    bare_client = TestClient(Starlette(routes=[Route("/", bare)]))

    def timed(get, count: int) -> list[float]:  # type: ignore[no-untyped-def]
        for _ in range(10):
            get()
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            response = get()
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text[:300]
        return samples

    def raw_list() -> object:
        raw.execute("SELECT s.pk, s.sid, s.iccid, s.unique_name, s.status, p.sid, p.unique_name "
                    "FROM wireless_sims s LEFT JOIN wireless_rate_plans p ON p.pk = s.rate_plan_pk "
                    "WHERE s.account_sid = ? ORDER BY s.pk DESC LIMIT 51", (ACCOUNT_SID,)).fetchall()

        class Ok:
            status_code = 200
        return Ok()

    n = args.requests
    results = {
        "bare Starlette+Jinja2 page": timed(lambda: bare_client.get("/"), n),
        "raw SQLite list query": timed(raw_list, n),
        "SIM list, first page": timed(lambda: client.get("/console/sims"), n),
        "SIM list, status filter": timed(lambda: client.get("/console/sims?status=suspended"), n),
        "SIM list, ICCID search": timed(lambda: client.get(f"/console/sims?q={iccid[:15]}"), n),
        "SIM list, page at 50,000": timed(lambda: client.get(f"/console/sims?after={deep}"), n),
        "SIM page (30 days daily)": timed(
            lambda: client.get(f"/console/sims/{rng.choice(with_usage)}"), n),
        "SIM page (48 h hourly)": timed(
            lambda: client.get(f"/console/sims/{rng.choice(with_usage)}?usage=hourly"), n),
        "overview": timed(lambda: client.get("/console/overview"), max(20, n // 4)),
    }
    targets = {"SIM list": 100, "SIM page": 150, "overview": 300}
    bare_p99 = percentiles(results["bare Starlette+Jinja2 page"])[1]
    print(f"{args.sims:,} SIMs, {args.with_usage:,} with 30 days of hourly usage; "
          f"{n} requests each (overview {max(20, n // 4)})")
    print(f"{'page':32} {'p50 ms':>8} {'p99 ms':>8} {'target':>8} {'p99/bare':>9}")
    for name, samples in results.items():
        p50, p99 = percentiles(samples)
        target = next((f"≤ {v}" for k, v in targets.items() if name.startswith(k)), "")
        print(f"{name:32} {p50:8.1f} {p99:8.1f} {target:>8} {p99 / bare_p99:9.1f}")
    client.close()
    runtime.close()


if __name__ == "__main__":
    main()
