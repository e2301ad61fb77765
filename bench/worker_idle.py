"""What an idle background worker costs a large fleet: the time of one pass over every job when
none has work, against a ceiling measured in the same run, the same number of read
transactions that each run `SELECT 1` (the least a job that looks before it writes can cost).
The worker makes such a pass every `tick` (0.25 s) while idle.

    .venv/bin/python bench/worker_idle.py [--sims 100000] [--passes 50]
                                          [--postgres postgresql://127.0.0.1:5432/test]
                                          [--only sqlite]

The fleet is `--sims` active Wireless SIMs and as many active Super SIMs, each with an open
data session, as `bench/ingest.py` sets them up.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from ingest import postgres_database, provision_super_sims, setup
from sqlalchemy import text

from simplane import products


def pass_ms(run, passes: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(passes):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(name: str, url: str, sims: int, passes: int) -> dict:
    rt, _imsis = setup(url, sims, 10_000, "wireless")
    provision_super_sims(rt, sims)
    products.register(rt.worker)  # what `simplane serve` registers
    jobs = rt.worker.jobs

    def ceiling() -> None:
        for _job in jobs:
            with rt.db.read() as db:
                db.execute(text("SELECT 1"))

    assert not rt.worker.run_once(), "the worker found work: not idle"
    idle = pass_ms(rt.worker.run_once, passes)
    floor = pass_ms(ceiling, passes)
    print(f"[{name}] {sims:,} Wireless and {sims:,} Super SIMs, {len(jobs)} jobs: an idle pass "
          f"takes {idle:.2f} ms (median of {passes}); {len(jobs)} read transactions of "
          f"SELECT 1: {floor:.2f} ms; ratio {idle / floor:.1f}; at one pass every "
          f"{rt.worker.tick} s, {idle / 1000 / rt.worker.tick:.1%} of a core")
    rt.close()
    return {"backend": name, "idle_pass_ms": round(idle, 2), "select_1_pass_ms": round(floor, 2),
            "ratio": round(idle / floor, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=50)
    parser.add_argument("--postgres", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as tmp:
            print(measure("sqlite", f"sqlite:///{Path(tmp) / 'idle.db'}", args.sims, args.passes))
    if args.only != "sqlite":
        with postgres_database(args.postgres) as url:
            print(measure("postgresql", url, args.sims, args.passes))


if __name__ == "__main__":
    main()
