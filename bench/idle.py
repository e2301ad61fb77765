"""What an idle `simplane serve` costs: the CPU time (utime + stime from /proc/PID/stat) of a
server on SQLite over a quiet window, against a ceiling measured in the same run, an idle bare
uvicorn + FastAPI app with one route (the least a Python HTTP server costs while idle).

    .venv/bin/python bench/idle.py [--seconds 30] [--settle 5]
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
from _common import free_port, wait_for_port

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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"PYTHONPATH": str(Path(__file__).parents[1]), **os.environ,
               "SIMPLANE_DATABASE_URL": f"sqlite:///{tmp}/idle.db"}
        Path(tmp, "bare_app.py").write_text(BARE_APP)
        port = free_port()
        serve = measure([sys.executable, "-c", "from simplane.cli import app; app()", "serve", "--port", str(port),
                         "--log-level", "warning"], port, env, args.settle, args.seconds, tmp)
        port = free_port()
        bare = measure([sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port),
                        "--log-level", "warning"], port, env, args.settle, args.seconds, tmp)
    print(f"idle over {args.seconds:.0f} s: simplane serve (SQLite) {serve:.2%} of a core; "
          f"bare uvicorn + FastAPI {bare:.2%}; difference {serve - bare:.2%}")


if __name__ == "__main__":
    main()
