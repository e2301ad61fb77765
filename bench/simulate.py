"""Wall-clock time of `simplane simulate --sims 10000 --hours 24 --fast` on a fresh SQLite
database (provisioning included), several times. Target: ≤ 2 minutes.

    .venv/bin/python bench/simulate.py [--sims 10000] [--hours 24] [--runs 2]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYTHON, server_env

DONE = re.compile(r"(\d+) SIMs, (\d+) events in (\d+) batches, (\d+) bytes, ([\d.]+)s")


def run(sims: int, hours: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'simulate.db'}"
        started = time.perf_counter()
        out = subprocess.run(
            [PYTHON, "-m", "simplane.cli", "simulate", "--sims", str(sims), "--hours", str(hours),
             "--fast", "--database-url", url],
            env=server_env(url), capture_output=True, text=True, timeout=1800, check=True)
        wall = time.perf_counter() - started
    match = DONE.search(out.stderr)
    if not match:
        raise RuntimeError("unexpected output: " + out.stderr[-2000:])
    events, simulated = int(match.group(2)), float(match.group(5))
    return {"wall_s": round(wall, 1), "simulate_s": simulated, "events": events,
            "batches": int(match.group(3)), "events_per_s": round(events / simulated)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", type=int, default=10_000)
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    results = []
    for n in range(args.runs):
        result = run(args.sims, args.hours)
        results.append(result)
        print(f"run {n + 1}: {result}", flush=True)
    walls = [r["wall_s"] for r in results]
    print(f"{args.sims:,} SIMs × {args.hours:g} h --fast: best {min(walls):.1f} s, median "
          f"{statistics.median(walls):.1f} s wall clock (target ≤ 120 s)")


if __name__ == "__main__":
    main()
