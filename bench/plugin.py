"""The pytest plugin's two costs: starting its server (once per test session) and resetting it
(before every test), with 1,000 SIMs and what their devices did.

    .venv/bin/python bench/plugin.py [--database-url postgresql://127.0.0.1/bench] [--rounds 7]

Start-up is measured as users meet it: whole `pytest` runs in fresh processes, of one test that
asks for the fixture and of one that does not (the difference is what the server costs a
session), and of the latter with the plugin disabled (`-p no:simplane`: what loading the plugin
costs every session, fixture or not).

Ceilings, measured in the same run:
- start-up: migrating a fresh database alone (what any server on a new database pays first);
- reset: the database's raw DELETE of the same rows, sent by its driver (sqlite3 or psycopg)
  without SQLAlchemy, and, for SQLite, the alternative to a reset: a fresh migrated file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from simplane.core.db import upgrade  # noqa: E402 (after the path is set)
from simplane.testing.handle import Simplane  # noqa: E402

SIMS = 1000
DEVICES = 50


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def fill(plane: Simplane) -> None:
    """A test's worth of state: 1,000 SIMs; 50 of them attached, using data, sent a command."""
    sims = plane.sims.provision(count=SIMS)
    for sim in sims[:DEVICES]:
        device = plane.device(sim)
        device.attach()
        device.use(up=1000, down=5000)
        plane.client.wireless.v1.commands.create(sim=sim, command="ping")
    plane.run_due()


def pytest_run(workdir: Path, source: str, *args: str) -> float:
    """Seconds a whole `pytest` run of one test file takes, in a fresh process."""
    test = workdir / "test_one.py"
    test.write_text(source)
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", *args, str(test)], cwd=workdir,
                   env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def start_up(workdir: Path, rounds: int) -> None:
    plain = "def test_plain():\n    assert True\n"
    served = "def test_served(simplane):\n    assert simplane.sims.provision()\n"
    without, loaded, migrating, copying = [], [], [], []
    for _ in range(rounds):
        without.append(pytest_run(workdir, plain, "-p", "no:simplane"))
        loaded.append(pytest_run(workdir, plain))
        shutil.rmtree(workdir / ".pytest_cache", ignore_errors=True)
        migrating.append(pytest_run(workdir, served))  # no migrated file kept yet
        copying.append(pytest_run(workdir, served))  # a copy of the one just kept
    base, plugin, first, later = (statistics.median(x)
                                  for x in (without, loaded, migrating, copying))
    print(f"pytest, one test, plugin disabled:      {ms(base)}")
    print(f"  plugin loaded, fixture unused:        {ms(plugin)}  (+{ms(plugin - base)})")
    print(f"  the fixture used, first session:      {ms(first)}  (+{ms(first - plugin)} "
          "for the server, migrating SQLite)")
    print(f"  the fixture used, later sessions:     {ms(later)}  (+{ms(later - plugin)} "
          "for the server, a copy of the migrated file)")


def raw_delete(plane: Simplane, database_url: str) -> float:
    """The same rows deleted by the driver alone: one transaction, the reset's tables in its
    order, the session's accounts kept."""
    reset = plane._reset
    kept = [row["sid"] for row in reset.kept]
    statements = [f"DELETE FROM {t.name}" for t in reset.tables if t.name != "accounts"]
    marks = ", ".join("?" for _ in kept)
    if database_url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(database_url.split(":///", 1)[1], isolation_level=None)
        conn.execute("PRAGMA foreign_keys=ON")
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        for statement in statements:
            conn.execute(statement)
        conn.execute(f"DELETE FROM accounts WHERE sid NOT IN ({marks})", kept)
        conn.execute("COMMIT")
        took = time.perf_counter() - started
        conn.close()
    else:
        import psycopg

        with psycopg.connect(database_url.replace("postgresql+psycopg", "postgresql")) as conn:
            started = time.perf_counter()
            with conn.transaction():
                for statement in statements:
                    conn.execute(statement)  # type: ignore[arg-type]
                conn.execute(f"DELETE FROM accounts WHERE sid NOT IN "  # type: ignore[arg-type]
                             f"({', '.join('%s' for _ in kept)})", kept)
            took = time.perf_counter() - started
    plane._devices.clear()
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL database to use (its rows are deleted); default SQLite")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--startup-rounds", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="simplane-plugin-bench-"))
    sqlite = args.database_url is None
    url = args.database_url or f"sqlite:///{workdir / 'plugin.db'}"

    if sqlite:
        start_up(workdir, args.startup_rounds)
        started = time.perf_counter()
        upgrade(f"sqlite:///{workdir / 'migrated.db'}")
        migrate = time.perf_counter() - started
    started = time.perf_counter()
    plane = Simplane(url)
    start = time.perf_counter() - started
    plane.close()
    started = time.perf_counter()
    plane = Simplane(url)  # the same database again: nothing to migrate
    again = time.perf_counter() - started
    print(f"server start-up in this process, fresh database: {ms(start)}")
    if sqlite:
        print(f"  migrating a fresh file alone (ceiling): {ms(migrate)}   "
              f"start-up/migration = {start / migrate:.2f}")
    print(f"server start-up in this process, migrated database: {ms(again)}")

    resets, raws, fresh = [], [], []
    for _ in range(args.rounds):
        fill(plane)
        started = time.perf_counter()
        plane.reset()
        resets.append(time.perf_counter() - started)
        fill(plane)
        raws.append(raw_delete(plane, url))
        plane.reset()
        if sqlite:
            target = workdir / f"fresh-{len(fresh)}.db"
            started = time.perf_counter()
            upgrade(f"sqlite:///{target}")
            fresh.append(time.perf_counter() - started)
    plane.close()
    reset, raw = statistics.median(resets), statistics.median(raws)
    print(f"reset with {SIMS} SIMs ({DEVICES} attached, with sessions, usage and commands), "
          f"median of {args.rounds}: {ms(reset)} (max {ms(max(resets))})")
    print(f"  raw DELETE of the same rows by the driver (ceiling): {ms(raw)}   "
          f"reset/raw = {reset / raw:.2f}")
    if sqlite:
        print(f"  a fresh migrated SQLite file instead: {ms(statistics.median(fresh))}   "
              f"fresh/reset = {statistics.median(fresh) / reset:.0f}")


if __name__ == "__main__":
    main()
