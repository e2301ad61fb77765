"""Ingest throughput of interim updates, against the database's raw batched insert rate of the
same rows, measured in the same run, on SQLite and PostgreSQL.

    .venv/bin/python bench/ingest.py [--sims 20000] [--rounds 5] [--batch 10000]
                                     [--postgres postgresql://127.0.0.1:5432/test] [--only sqlite]
                                     [--product supersim]

With `--product supersim` the SIMs are Super SIMs in a Fleet, and every interim update also
writes a `data-session.updated` Connection Event to the Event Streams outbox (in the same
transaction); the run then also reports what validating an event against its JSON Schema costs.

Each SIM has one open data session; a round sends every SIM one interim update (cumulative
counters, as RADIUS reports them) in batches of `--batch` events, each batch one `ingest()` call
(one transaction). The ceiling is the same rows (IMSI, session id, time, four counters) inserted
with the DB-API's `executemany` into a plain table, one transaction per batch, on the same
database file or server; for Super SIMs each of those transactions also inserts the batch's
Connection Events, as ingest wrote them (JSON already encoded), into a plain copy of the outbox
table with its two indexes: the least a batch with events on has to write. A second ceiling is
ingest's own statements of the last round (reads, writes and commits, with their parameters as
they were sent to the driver), replayed on a raw connection: what ingest would reach if its
Python cost nothing.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import event

from simplane.config import Settings
from simplane.core.runtime import Runtime
from simplane.network.events import NetworkEvent
from simplane.network.ingest import ingest
from simplane.wireless import inventory
from simplane.wireless.service import create_rate_plan

ACCOUNT = "AC" + "e" * 32
# Wireless SIMs stay on their home network; Super SIMs attach to AT&T (310-410).
NETWORK = {"wireless": ("901", "42"), "supersim": ("310", "410")}
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def setup(url: str, sims: int, batch: int, product: str) -> tuple[Runtime, list[str]]:
    rt = Runtime(Settings(database_url=url, run_workers=False, account_sid=ACCOUNT,
                          auth_token="bench-" + "0" * 26))
    rt.ensure_bootstrap()
    imsis = (provision_super_sims if product == "supersim" else provision_sims)(rt, sims)
    for i in range(0, sims, batch):
        ingest(rt, [NetworkEvent("session.started", imsi, T0, session_id="bench",
                                 mcc=NETWORK[product][0], mnc=NETWORK[product][1], rat="LTE", apn="super",
                                 ip_address="10.0.0.1") for imsi in imsis[i:i + batch]])
    return rt, imsis


def provision_sims(rt: Runtime, count: int) -> list[str]:
    with rt.db.write() as db:
        plan = create_rate_plan(db, ACCOUNT, {"UniqueName": "bench", "DataLimit": 2_000_000,
                                              "InternationalRoaming": ["data"]}, T0)
        rows = inventory.generated_rows(count, "active")
        inventory.add_sims(db, ACCOUNT, rows, T0, plan.pk)
        return [row.imsi for row in rows]


def provision_super_sims(rt: Runtime, count: int) -> list[str]:
    from sqlalchemy import update

    from simplane.supersim import inventory as stock
    from simplane.supersim import networks
    from simplane.supersim.models import Sim as SuperSim
    from simplane.supersim.service import create_fleet, create_nap

    with rt.db.write() as db:
        nap = create_nap(db, ACCOUNT, {"UniqueName": "bench", "Networks": [
            networks.network_for(*NETWORK["supersim"]).sid]}, T0)
        fleet = create_fleet(db, ACCOUNT, {"NetworkAccessProfile": nap.sid,
                                           "DataLimit": 2_000_000}, T0)
        rows = stock.add_sims(db, stock.generated_rows(count), T0, ACCOUNT)
        db.execute(update(SuperSim).values(fleet_pk=fleet.pk, status="active",
                                           date_activated=T0))
        return [row["imsi"] for row in rows]


def validation_cost(rt: Runtime, sample: int = 2000) -> float:
    """Microseconds to validate one emitted event against its JSON Schema."""
    import orjson
    from sqlalchemy import select

    from simplane.events import catalogue
    from simplane.events.models import OutboxEvent

    with rt.db.read() as db:
        rows = db.execute(select(OutboxEvent.type, OutboxEvent.data)
                          .order_by(OutboxEvent.pk.desc()).limit(sample)).all()
    events = [(type_, orjson.loads(data)) for type_, data in rows]
    catalogue.validate(*events[0])  # compile the validator outside the timing
    started = time.perf_counter()
    for type_, data in events:
        catalogue.validate(type_, data)
    return (time.perf_counter() - started) / len(events) * 1e6


def updates(imsis: list[str], round_no: int) -> list[NetworkEvent]:
    when = T0 + timedelta(minutes=6 * round_no)
    total = 1000 * round_no
    return [NetworkEvent("session.updated", imsi, when, session_id="bench", bytes_up=total,
                         bytes_down=3 * total, packets_up=round_no, packets_down=3 * round_no)
            for imsi in imsis]


def raw_rows(events: list[NetworkEvent]) -> list[tuple]:
    return [(e.imsi, e.session_id, e.time.isoformat(), e.bytes_up, e.bytes_down, e.packets_up,
             e.packets_down) for e in events]


def written_events(rt: Runtime, count: int) -> list[tuple]:
    """The last `count` outbox rows, oldest first, as ingest wrote them (JSON already encoded)."""
    from sqlalchemy import select

    from simplane.events.models import OutboxEvent

    columns = [OutboxEvent.__table__.c[name] for name in OUTBOX_COLUMNS]
    with rt.db.read() as db:
        rows = db.execute(select(*columns).order_by(OutboxEvent.pk.desc()).limit(count)).all()
    return [tuple(row) for row in reversed(rows)]


OUTBOX_COLUMNS = ("id", "account_sid", "type", "subject", "time", "data", "published_at")


def raw_insert_rate(rt: Runtime, rounds: list[list[NetworkEvent]], batch: int,
                    events: list[tuple] | None = None) -> float:
    """Rows/s of executemany INSERT of the same rows into a plain table, one transaction per
    batch; with `events` (one per row), each transaction also inserts the batch's event rows into
    a plain copy of the outbox with its two indexes."""
    sqlite = rt.db.engine.dialect.name == "sqlite"
    conn = rt.db.engine.raw_connection()
    try:
        cur = conn.cursor()
        cur.execute("DROP TABLE IF EXISTS bench_raw_events")
        cur.execute("DROP TABLE IF EXISTS bench_raw_outbox")
        cur.execute("CREATE TABLE bench_raw_events (imsi VARCHAR(15), session_id VARCHAR(128), "
                    "time VARCHAR(40), bytes_up BIGINT, bytes_down BIGINT, packets_up BIGINT, "
                    "packets_down BIGINT)")
        pk = "INTEGER PRIMARY KEY AUTOINCREMENT" if sqlite else "BIGSERIAL PRIMARY KEY"
        cur.execute(f"CREATE TABLE bench_raw_outbox (pk {pk}, txid BIGINT NOT NULL DEFAULT 0, "
                    "id VARCHAR(64), account_sid VARCHAR(34), type VARCHAR(128), "
                    "subject VARCHAR(64), time VARCHAR(32), data TEXT, published_at FLOAT)")
        cur.execute("CREATE INDEX bench_raw_outbox_a ON bench_raw_outbox (account_sid, txid, pk)")
        cur.execute("CREATE INDEX bench_raw_outbox_b ON bench_raw_outbox (txid, pk)")
        conn.commit()
        mark = "?" if sqlite else "%s"
        sql = f"INSERT INTO bench_raw_events VALUES ({', '.join([mark] * 7)})"
        outbox_sql = (f"INSERT INTO bench_raw_outbox ({', '.join(OUTBOX_COLUMNS)}) "
                      f"VALUES ({', '.join([mark] * 7)})")
        rows = [row for events_of_round in rounds for row in raw_rows(events_of_round)]
        per_round = len(rounds[0])
        count = 0
        started = time.perf_counter()
        for first in range(0, len(rows), per_round):
            for i in range(first, first + per_round, batch):
                chunk = rows[i:min(i + batch, first + per_round)]
                if sqlite:  # simplane's SQLite connections leave BEGIN to the caller
                    cur.execute("BEGIN")
                cur.executemany(sql, chunk)
                if events is not None:
                    cur.executemany(outbox_sql, events[i:i + len(chunk)])
                if sqlite:
                    cur.execute("COMMIT")
                else:
                    conn.commit()
                count += len(chunk)
        elapsed = time.perf_counter() - started
        cur.execute("DROP TABLE bench_raw_events")
        cur.execute("DROP TABLE bench_raw_outbox")
        conn.commit()
        return count / elapsed
    finally:
        conn.close()


@contextmanager
def recording(rt: Runtime, into: list[tuple | None] | None) -> Iterator[None]:
    """While the block runs, record into `into` every statement sent to the driver, with its
    parameters as sent, and None for each commit."""
    if into is None:
        yield
        return

    def record(_conn, _cursor, statement, parameters, _context, many) -> None:  # type: ignore[no-untyped-def]
        into.append((statement, parameters, many))

    def commit(_conn) -> None:  # type: ignore[no-untyped-def]
        into.append(None)

    def begin(_conn) -> None:  # type: ignore[no-untyped-def]
        into.append(BEGIN)

    engine = rt.db.engine
    event.listen(engine, "before_cursor_execute", record)
    event.listen(engine, "commit", commit)
    event.listen(engine, "begin", begin)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", record)
        event.remove(engine, "commit", commit)
        event.remove(engine, "begin", begin)


BEGIN = ("BEGIN",)  # a transaction starts (on SQLite simplane sends BEGIN on the driver itself)


def replay_rate(rt: Runtime, sent: list[tuple | None], count: int) -> float:
    """Events/s of ingest's own statements of a round (reads, updates, inserts, commits), sent
    again to the driver as they were: what ingest would reach if it cost no Python at all. Run
    last: it adds the round's usage and events once more."""
    sqlite = rt.db.engine.dialect.name == "sqlite"
    conn = rt.db.engine.raw_connection()
    try:
        cur = conn.cursor()
        started = time.perf_counter()
        for step in sent:
            if step is BEGIN:
                if sqlite:  # ingest's transactions are writers: BEGIN IMMEDIATE
                    cur.execute("BEGIN IMMEDIATE")
                continue
            if step is None:
                if sqlite:  # simplane's SQLite connections leave BEGIN and COMMIT to it
                    cur.execute("COMMIT")
                else:
                    conn.commit()
                continue
            statement, parameters, many = step
            if many:
                cur.executemany(statement, parameters)
            else:
                cur.execute(statement, parameters)
        return count / (time.perf_counter() - started)
    finally:
        conn.close()


def run(name: str, url: str, sims: int, rounds: int, batch: int, product: str) -> dict:
    started = time.perf_counter()
    rt, imsis = setup(url, sims, batch, product)
    print(f"[{name}] {sims} SIMs with open sessions in {time.perf_counter() - started:.1f}s",
          flush=True)
    try:
        work = [updates(imsis, r) for r in range(1, rounds + 1)]
        per_round = []
        sent: list[tuple | None] = []  # the last round's statements
        for r, events in enumerate(work):
            with recording(rt, sent if r == len(work) - 1 else None):
                t = time.perf_counter()
                for i in range(0, len(events), batch):
                    ingest(rt, events[i:i + batch])
                per_round.append(len(events) / (time.perf_counter() - t))
        ingest_rate = statistics.median(per_round)
        replay = replay_rate(rt, sent, sims)
        events = written_events(rt, rounds * sims) if product == "supersim" else None
        raw_rate = raw_insert_rate(rt, work, batch, events)
        validate_us = validation_cost(rt) if product == "supersim" else None
    finally:
        rt.close()
    out = {"backend": name, "product": product, "ingest_events_per_s": round(ingest_rate),
           "raw_insert_rows_per_s": round(raw_rate), "ratio": round(ingest_rate / raw_rate, 3),
           "ingest_statements_alone_per_s": round(replay),
           "ratio_to_statements_alone": round(ingest_rate / replay, 3)}
    if validate_us is not None:
        out["schema_validation_us_per_event"] = round(validate_us, 1)
    print(f"[{name}] interim updates: {ingest_rate:,.0f} events/s (median of {rounds} rounds: "
          f"{', '.join(f'{r:,.0f}' for r in per_round)}); raw executemany insert of the same "
          f"rows: {raw_rate:,.0f} rows/s; ratio {ingest_rate / raw_rate:.3f}; ingest's own "
          f"statements alone: {replay:,.0f} events/s; ratio {ingest_rate / replay:.3f}",
          flush=True)
    return out


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A new database on the server for the block, dropped after it."""
    name = f"simplane_bench_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--postgres", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--product", choices=["wireless", "supersim"], default="wireless")
    args = parser.parse_args()
    results = []
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as tmp:
            results.append(run("sqlite", f"sqlite:///{Path(tmp) / 'ingest.db'}", args.sims,
                               args.rounds, args.batch, args.product))
    if args.only != "sqlite":
        with postgres_database(args.postgres) as url:
            results.append(run("postgresql", url, args.sims, args.rounds, args.batch,
                               args.product))
    for r in results:
        print(r)


if __name__ == "__main__":
    main()
