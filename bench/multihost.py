"""RADIUS accounting ingest through two `simplane serve` processes (two ports, as on two hosts)
on one PostgreSQL database, per process and in total, against one process alone taking the
same load in the same run (the ceiling a second host is measured against).

    .venv/bin/python bench/multihost.py [--postgres URL] [--sims 10000] [--interims 2]
                                        [--parallel 64] [--rounds 2]

Each round makes a fresh database (`simplane_bench_multihost`, dropped at the end), provisions
`--sims` active SIMs, and drives Debian's `radclient` as bench/radius.py does: a Start for a
data session on every SIM, `--interims` rounds of Interim-Update, a Stop. "one" sends it all to
one server; "two" sends the first half of the SIMs to server A and the other half to server B,
at the same time. Every request must be answered and every session's usage must add up in the
database: the bench checks the totals after each run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYTHON, ServerProcess, free_port, postgres_database
from radius import SECRET, radclient, request_files
from usage import provision_active, runtime

ROOT = Path(__file__).resolve().parents[1]


def serve(url: str) -> tuple[ServerProcess, int]:
    udp, http = free_port(), free_port()
    os.environ["PYTHONPATH"] = str(ROOT)
    argv = [PYTHON, "-m", "simplane.cli", "serve", "--database-url", url, "--port", str(http),
            "--log-level", "warning", "--radius-port", str(udp), "--radius-secret", SECRET]
    return ServerProcess(argv, url, http), udp


def drive_all(port: int, files: list[tuple[str, Path]], parallel: int, out: dict) -> None:
    started = time.perf_counter()
    answered = sent = 0
    for _name, path in files:
        result = radclient(path, port, parallel)
        answered += result["answered"]
        sent += result["sent"]
    out.update(seconds=time.perf_counter() - started, answered=answered, sent=sent)


def check_totals(url: str, sims: int, interims: int) -> None:
    """Every SIM's rollups hold exactly its Stop's counters."""
    up = 1000 * interims + 500
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        rows = conn.execute("SELECT count(DISTINCT sim_sid), sum(upload), sum(download) FROM "
                            "network_sim_usage_hours").fetchone()
    assert rows is not None
    expected_up = up * sims
    expected_down = (4000 * interims + 900) * sims
    assert rows[0] == sims and rows[1] == expected_up and rows[2] == expected_down, \
        f"totals off: {rows} against ({sims}, {expected_up}, {expected_down})"


def one_round(server_url: str, args: argparse.Namespace, workdir: Path, mode: str) -> dict:
    with postgres_database(server_url, "simplane_bench_multihost") as plain:
        url = plain.replace("postgresql://", "postgresql+psycopg://")
        rt = runtime(url)
        try:
            rows = provision_active(rt, args.sims, datetime.now(UTC))
        finally:
            rt.close()
        imsis = [r.imsi for r in rows]
        servers = [serve(url) for _ in range(1 if mode == "one" else 2)]
        try:
            halves = [imsis] if mode == "one" else [imsis[: len(imsis) // 2],
                                                     imsis[len(imsis) // 2:]]
            results: list[dict] = [{} for _ in servers]
            threads = []
            for i, ((_server, port), part) in enumerate(zip(servers, halves, strict=True)):
                sub = workdir / f"{mode}-{i}"
                sub.mkdir(exist_ok=True)
                files = request_files(sub, part, args.interims)
                # number the sessions apart: request_files names them bench-<n> per file
                for _name, path in files:
                    path.write_text(path.read_text().replace('"bench-', f'"bench-{i}-')
                                    .replace("Framed-IP-Address = 10.",
                                             f"Framed-IP-Address = {10 + i}."))
                threads.append(threading.Thread(target=drive_all, args=(
                    port, files, args.parallel, results[i])))
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            for server, _port in servers:
                server.stop()
        check_totals(url, args.sims, args.interims)
    lost = sum(r["sent"] - r["answered"] for r in results)
    wall = max(r["seconds"] for r in results)
    return {"per_process": [r["answered"] / r["seconds"] for r in results],
            "total": sum(r["answered"] for r in results) / wall, "lost": lost}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--sims", type=int, default=10_000)
    parser.add_argument("--interims", type=int, default=2)
    parser.add_argument("--parallel", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / "simplane-bench-multihost"
    workdir.mkdir(exist_ok=True)
    os.chdir(workdir)
    print(f"load: {os.getloadavg()[0]:.2f}; {args.sims:,} SIMs, {args.interims + 2} requests "
          f"each, {args.parallel} in flight per server", flush=True)
    runs: dict[str, list[dict]] = {"one": [], "two": []}
    for r in range(args.rounds):
        for mode in ("one", "two") if r % 2 == 0 else ("two", "one"):
            out = one_round(args.postgres, args, workdir, mode)
            runs[mode].append(out)
            print(f"round {r + 1} {mode}: " + ", ".join(f"{x:,.0f}/s" for x in
                                                       out["per_process"])
                  + f" per process; total {out['total']:,.0f}/s; lost {out['lost']}; "
                  "totals exact", flush=True)
    one = statistics.median(r["total"] for r in runs["one"])
    two = statistics.median(r["total"] for r in runs["two"])
    per = statistics.median(x for r in runs["two"] for x in r["per_process"])
    print(f"median: one server {one:,.0f} requests/s (the ceiling); two servers {two:,.0f}/s "
          f"in total, {per:,.0f}/s per process; two/one {two / one:.2f}")


if __name__ == "__main__":
    main()
