"""What reading the database's clock costs: `now()` of a virtual clock kept in the database,
against a ceiling measured in the same run, `now()` of the real clock (`datetime.now`, to whole
seconds), which is what every request asked before. Also the cost of the read a process makes
at most every 0.1 s, and of one step when the clock is moved (a drain of every job at the new
moment, with nothing due).

    .venv/bin/python bench/clock.py [--calls 200000] [--postgres postgresql://127.0.0.1:5432/test]
                                    [--only sqlite]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from simplane.config import Settings
from simplane.core.clock import Clock
from simplane.core.runtime import Runtime
from simplane.core.virtual_clock import DatabaseClock, advance_clock


def per_call_ns(function, calls: int) -> float:  # type: ignore[no-untyped-def]
    rounds = []
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(calls):
            function()
        rounds.append((time.perf_counter_ns() - start) / calls)
    return statistics.median(rounds)


def measure(name: str, url: str, calls: int) -> None:
    rt = Runtime(Settings(database_url=url, run_workers=False))
    try:
        clock = rt.clock
        assert isinstance(clock, DatabaseClock)
        clock.start_virtual(datetime(2030, 1, 1, tzinfo=UTC), speed=1)
        real = per_call_ns(Clock().now, calls)
        virtual = per_call_ns(clock.now, calls)
        refresh = per_call_ns(clock.refresh, 200) / 1000
        step = per_call_ns(lambda: advance_clock(rt, 1), 50) / 1e6
        print(f"{name}: now() real {real:.0f} ns, virtual {virtual:.0f} ns "
              f"(virtual/real {virtual / real:.2f}); re-reading the row {refresh:.0f} µs "
              f"(at most every 0.1 s); one step of a move {step:.1f} ms")
        clock.use_real()
    finally:
        rt.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--postgres", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as tmp:
            measure("SQLite", f"sqlite:///{Path(tmp) / 'clock.db'}", args.calls)
    if args.only != "sqlite":
        from ingest import postgres_database

        with postgres_database(args.postgres) as url:
            measure("PostgreSQL", url, args.calls)


if __name__ == "__main__":
    main()
