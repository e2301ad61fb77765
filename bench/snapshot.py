"""`simplane db snapshot` / `db restore` rates against the database's own: rows a second taken and
restored, beside the rate at which the driver alone reads every table (`SELECT *`) and writes
the same rows back (one executemany per table, in one transaction). SQLite, and PostgreSQL when
one answers at $SIMPLANE_TEST_POSTGRES_URL (default postgresql://127.0.0.1:5432/test).

    .venv/bin/python bench/snapshot.py [--sims 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simplane import products
from simplane.config import Settings, normalise_database_url
from simplane.core.accounts import create_account
from simplane.core.db import make_engine
from simplane.core.runtime import Runtime
from simplane.core.snapshot import restore, take
from simplane.wireless import inventory


def fill(url: str, sims: int) -> None:
    from cryptography.fernet import Fernet

    rt = Runtime(Settings(database_url=url, run_workers=False,
                          secret_key=Fernet.generate_key().decode()))
    with rt.db.write() as db:
        account = create_account(db, rt.box, rt.clock).sid
        inventory.add_sims(db, account, inventory.generated_rows(sims), rt.clock.now())
    rt.close()


def raw_rates(engine: sa.Engine) -> tuple[float, float]:
    """Rows a second the driver reads every table at, and writes them back at."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    tables = [t for t in metadata.sorted_tables if t.name != "alembic_version"]
    started = time.perf_counter()
    data = {}
    with engine.connect() as conn:
        for table in tables:
            data[table.name] = [tuple(r) for r in conn.exec_driver_sql(
                f'SELECT * FROM "{table.name}"').all()]
    read = time.perf_counter() - started
    rows = sum(len(v) for v in data.values())
    started = time.perf_counter()
    with engine.begin() as conn:
        for table in reversed(tables):
            conn.exec_driver_sql(f'DELETE FROM "{table.name}"')
        for table in tables:
            if data[table.name]:
                marks = ", ".join(["%s" if engine.dialect.name == "postgresql" else "?"]
                                  * len(table.columns))
                conn.exec_driver_sql(f'INSERT INTO "{table.name}" VALUES ({marks})',
                                     data[table.name])
    return rows / read, rows / (time.perf_counter() - started)


def bench(name: str, url: str, sims: int, rounds: int, workdir: Path) -> None:
    fill(url, sims)
    engine = make_engine(url, immediate=url.startswith("sqlite"))
    path = workdir / f"{name}.snapshot"
    results: dict[str, list[float]] = {k: [] for k in ("take", "read", "restore", "write")}
    for _ in range(rounds):
        started = time.perf_counter()
        rows = take(engine, path)
        results["take"].append(rows / (time.perf_counter() - started))
        started = time.perf_counter()
        restore(engine, path, after=products.after_restore)
        results["restore"].append(rows / (time.perf_counter() - started))
        read, write = raw_rates(engine)
        results["read"].append(read)
        results["write"].append(write)
    median = {k: statistics.median(v) for k, v in results.items()}
    print(f"{name}: {rows} rows, snapshot {path.stat().st_size / 1e6:.1f} MB")
    print(f"  snapshot {median['take']:,.0f} rows/s, driver read {median['read']:,.0f} rows/s: "
          f"ratio {median['take'] / median['read']:.2f}")
    print(f"  restore  {median['restore']:,.0f} rows/s, driver write {median['write']:,.0f} "
          f"rows/s: ratio {median['restore'] / median['write']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sims", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import os

    import psycopg

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        bench("sqlite", f"sqlite:///{workdir / 'bench.db'}", args.sims, args.rounds, workdir)
        admin_url = os.environ.get("SIMPLANE_TEST_POSTGRES_URL",
                                   "postgresql://127.0.0.1:5432/test")
        try:
            admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
        except psycopg.OperationalError:
            print("postgresql: no server answers, skipped")
            return
        name = f"simplane_bench_{secrets.token_hex(4)}"
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = normalise_database_url(admin_url.rsplit("/", 1)[0] + f"/{name}")
            bench("postgresql", url, args.sims, args.rounds, workdir)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
