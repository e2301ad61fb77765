"""What an idle `simplane serve` costs: the CPU time (utime + stime from /proc/PID/stat) of a
server on SQLite and one on PostgreSQL over a quiet window, against a ceiling measured in the
same run, an idle bare uvicorn + FastAPI app with one route (the least a Python HTTP server
costs while idle). The PostgreSQL server's database is made for the run and dropped after it.

    .venv/bin/python bench/idle.py [--seconds 30] [--settle 5] [--postgres URL|none]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import free_port, postgres_database, wait_for_port

BARE_APP = """
from fastapi import FastAPI
app = FastAPI()
@app.get("/")
def root() -> dict:
    return {}
"""



def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(cmd: list[str], port: int, env: dict[str, str], settle: float, seconds: float,
            cwd: str) -> float:
    """The share of one core the process started by `cmd` uses while nothing calls it."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for_port(proc, port, str(cmd))
        time.sleep(settle)
        start, wall = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(seconds)
        return (cpu_seconds(proc.pid) - start) / (time.monotonic() - wall)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--settle", type=float, default=5)
    parser.add_argument("--postgres", default="postgresql://127.0.0.1:5432/test",
                        help="a PostgreSQL server (any database on it) to make a database on, "
                        "or none")
    args = parser.parse_args()
    print(f"load: {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = {"PYTHONPATH": str(Path(__file__).parents[1]), **os.environ}
        Path(tmp, "bare_app.py").write_text(BARE_APP)
        simplane = [sys.executable, "-c", "from simplane.cli import app; app()", "serve",
                    "--log-level", "warning", "--port"]
        port = free_port()
        bare = measure([sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port),
                        "--log-level", "warning"], port, env, args.settle, args.seconds, tmp)
        print(f"bare uvicorn + FastAPI (the ceiling): {bare:.2%} of a core", flush=True)
        port = free_port()
        sqlite = measure([*simplane, str(port)], port,
                         {**env, "SIMPLANE_DATABASE_URL": f"sqlite:///{tmp}/idle.db"},
                         args.settle, args.seconds, tmp)
        print(f"simplane serve, SQLite: {sqlite:.2%} of a core (difference {sqlite - bare:.2%}, "
              f"{sqlite / bare:.1f}x the bare app)", flush=True)
        if args.postgres != "none":
            with postgres_database(args.postgres, "simplane_bench_idle") as url:
                port = free_port()
                pg = measure([*simplane, str(port)], port, {**env, "SIMPLANE_DATABASE_URL": url},
                             args.settle, args.seconds, tmp)
            print(f"simplane serve, PostgreSQL: {pg:.2%} of a core (difference {pg - bare:.2%}, "
                  f"{pg / bare:.1f}x the bare app)", flush=True)


if __name__ == "__main__":
    main()
