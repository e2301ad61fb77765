"""`simplane db snapshot` and `simplane db restore`: every table, across SQLite and PostgreSQL,
from older schemas, and nothing changed by a file that is not a whole snapshot."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from typer.testing import CliRunner

from simplane.cli import app
from simplane.config import Settings, normalise_database_url
from simplane.core.clock import ManualClock
from simplane.core.db import alembic_config, make_engine, upgrade
from simplane.core.runtime import Runtime
from simplane.core.snapshot import take
from tests.conftest import _postgres_database
from tests.support import Receiver, start_server
from tests.test_migrations import insert, when

runner = CliRunner()
# Event Streams positions are made to mean on the restoring database what they meant where the
# snapshot was taken (see test_event_positions_*): not copied as they are.
POSITIONS = {"event_outbox": "txid", "event_sinks": "cursor_txid",
             "event_subscribed_events": "since_txid",
             # and the counters that tell processes their caches are stale move on past theirs
             "network_ingest": "generation", "network_facts": "version"}


def cli(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


@pytest.fixture(params=["sqlite", "postgresql"])
def other_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database to restore into, of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored.db'}"
    else:
        for url in _postgres_database():
            yield normalise_database_url(url)


def facts_version(url: str) -> int:
    engine = make_engine(normalise_database_url(url))
    with engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version FROM network_facts")).scalar_one()
    engine.dispose()
    return int(version)


def rows(url: str, tmp_path: Path) -> dict[str, list[list[Any]]]:
    """Every table's rows, as a snapshot writes them."""
    engine = make_engine(normalise_database_url(url))
    path = tmp_path / "compare.jsonl"
    take(engine, path)
    engine.dispose()
    tables: dict[str, list[list[Any]]] = {}
    columns: list[str] = []
    # One record a line, split at "\n" alone: text in the rows may hold other line breaks.
    for record in map(json.loads, path.read_text().rstrip("\n").split("\n")[1:-1]):
        if isinstance(record, dict):
            columns = record["columns"]
            tables[record["table"]] = current = []
            masked = columns.index(POSITIONS[record["table"]]) if (
                record["table"] in POSITIONS) else None
        else:
            if masked is not None:
                record[masked] = None
            current.append(record)
    return tables


def test_restores_every_row_on_either_database(server, account, other_url, tmp_path):
    """A fleet taken from one database, restored into another (SQLite and PostgreSQL both
    ways): every table's rows come back, the same credentials work, and new rows get keys of
    their own (PostgreSQL's sequences moved past the restored ones)."""
    client = account.client
    plan = client.wireless.v1.rate_plans.create(unique_name="fleet", data_limit=500)
    sims = server.provision(account.sid, 3, "active", "fleet")
    client.proxy.v1.services.create(unique_name="rides")
    client.wireless.v1.commands.create(sim=sims[0], command="wake up")
    snapshot = tmp_path / "fleet.snapshot"
    result = cli("db", "snapshot", str(snapshot), "--database-url", server.runtime.db.url)
    assert result.exit_code == 0, result.output
    assert gzip.decompress(snapshot.read_bytes()).startswith(b'{"format":"simplane-snapshot"')

    result = cli("db", "restore", str(snapshot), "--database-url", other_url)
    assert result.exit_code == 0, result.output
    assert rows(other_url, tmp_path) == rows(server.runtime.db.url, tmp_path)
    assert facts_version(other_url) > facts_version(server.runtime.db.url)

    clock = ManualClock()
    restored = start_server(Runtime(Settings(
        database_url=other_url, secret_key=server.runtime.settings.secret_key,
        run_workers=False), clock=clock))
    try:
        same = restored.client(account.sid, account.token).wireless.v1
        assert sorted(s.sid for s in same.sims.list()) == sorted(sims)
        assert same.rate_plans("fleet").fetch().sid == plan.sid
        second = same.rate_plans.create(unique_name="second")
        assert second.sid != plan.sid
        assert len(same.commands.list()) == 1
        assert same.commands.create(sim=sims[1], command="hello").status == "queued"
        assert restored.provision(account.sid, 2)  # new keys in every SIM table
        assert len(same.sims.list()) == 5
    finally:
        restored.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def old_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
    else:
        for url in _postgres_database():
            yield normalise_database_url(url)


def test_a_snapshot_of_an_older_schema_is_upgraded_on_restore(old_url, other_url, tmp_path):
    """Taken at revision 0013, before Wireless SIMs had activation dates and billing periods
    were keyed by them: restored at the newest revision, migration 0014 has converted its rows."""
    command.upgrade(alembic_config(old_url), "0013")
    engine = sa.create_engine(old_url)
    account = "AC" + "0" * 32
    sid = "DE" + "a" * 32
    with engine.begin() as connection:
        insert(connection, "wireless_sims", sid=sid, account_sid=account, iccid="89010",
               imsi="901420", status="active", date_status_changed=when("2025-03-20T08:00:00"))
        insert(connection, "network_sim_states", sim_sid=sid, account_sid=account,
               period="2025-05", used_home=1000)
    engine.dispose()
    snapshot = tmp_path / "old.snapshot"
    take(make_engine(old_url), snapshot)
    assert json.loads(gzip.decompress(snapshot.read_bytes()).splitlines()[0])["revisions"] == ["0013"]

    result = cli("db", "restore", str(snapshot), "--database-url", other_url)
    assert result.exit_code == 0, result.output
    engine = sa.create_engine(other_url)
    with engine.connect() as connection:
        activated = connection.scalar(sa.text("SELECT date_activated FROM wireless_sims"))
        period = connection.scalar(sa.text("SELECT period FROM network_sim_states"))
    engine.dispose()
    assert when(activated) == when("2025-03-20T08:00:00")
    assert period == "2025-05-20T08:00:00"


@pytest.fixture
def filled(other_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A database with an account and SIMs in it, and a whole snapshot of it."""
    result = cli("accounts", "create", "--database-url", other_url)
    assert result.exit_code == 0, result.output
    result = cli("sims", "provision", "--count", "3", "--database-url", other_url)
    assert result.exit_code == 0, result.output
    good = tmp_path / "good.jsonl"
    take(make_engine(other_url), good)
    yield other_url, good


def damaged(good: Path, tmp_path: Path) -> dict[str, tuple[bytes, str]]:
    """name: (file content, what the error says)."""
    text = good.read_text()
    lines = text.splitlines(keepends=True)
    header = json.loads(lines[0])
    whole = gzip.compress(text.encode())
    newer = json.dumps({**header, "revisions": ["9999"]}) + "\n"
    unknown_table = (lines[0] + '{"table":"secrets","columns":["x"]}\n[1]\n' + "".join(lines[1:]))
    row = next(i for i, line in enumerate(lines) if line.startswith("[") and '"DE' in line)
    bad_timestamp = [*lines[:row], lines[row].replace('+00:00"', 'X"', 1), *lines[row + 1:]]
    assert bad_timestamp != lines
    return {
        "foreign": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "not a simplane snapshot"),
        "other json": (b'{"format": "something-else"}\n', "not a simplane snapshot"),
        "empty": (b"", "empty"),
        # cut short after every row was read: the rows inserted so far are rolled back
        "no end": ("".join(lines[:-1]).encode(), "cut short"),
        "truncated gzip": (whole[:len(whole) - 20], "damaged"),
        # its checksum no longer holds: found once every row was read
        "bad checksum": (whole[:-8] + bytes([whole[-8] ^ 0xFF]) + whole[-7:], "CRC check failed"),
        "newer schema": ((newer + "".join(lines[1:])).encode(), "unknown to this simplane"),
        "unknown table": (unknown_table.encode(), "'secrets'"),
        "bad timestamp": ("".join(bad_timestamp).encode(), "'wireless_sims' holds a value"),
        "missing row": ("".join(lines[:row] + lines[row + 1:]).encode(), "do not add up"),
    }


def test_a_damaged_or_foreign_file_is_refused_and_changes_nothing(filled, tmp_path):
    url, good = filled
    before = rows(url, tmp_path)
    assert len(before["wireless_sims"]) == 3
    for name, (content, reason) in damaged(good, tmp_path).items():
        bad = tmp_path / "bad.snapshot"
        bad.write_bytes(content)
        result = cli("db", "restore", str(bad), "--database-url", url)
        assert result.exit_code == 1, (name, result.output)
        [message] = [line for line in result.stderr.splitlines() if "cannot restore" in line]
        assert reason in message and message.endswith("the database is unchanged"), (name, message)
        assert rows(url, tmp_path) == before, name


def test_tables_a_migration_adds_are_carried_without_being_named(other_url, tmp_path):
    """Any table of the schema is in the snapshot (as a virtual clock's would be)."""
    source = f"sqlite:///{tmp_path / 'source.db'}"
    later = sa.Table("later_feature", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("at", sa.DateTime(timezone=True)), sa.Column("label", sa.String(20)))
    for url in (source, other_url):
        upgrade(url)
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            later.create(connection)
            if url == source:
                connection.execute(later.insert().values(
                    id=7, at=when("2030-01-02T03:04:05"), label="moved"))
        engine.dispose()
    snapshot = tmp_path / "later.snapshot"
    take(make_engine(source), snapshot)
    result = cli("db", "restore", str(snapshot), "--database-url", other_url)
    assert result.exit_code == 0, result.output
    engine = sa.create_engine(other_url)
    with engine.connect() as connection:
        [(pk, at, label)] = connection.execute(sa.text("SELECT * FROM later_feature")).all()
    engine.dispose()
    assert (pk, when(at).isoformat(), label) == (7, "2030-01-02T03:04:05+00:00", "moved")


def test_event_positions_keep_their_meaning_on_the_restoring_database(old_url, other_url,
                                                                     tmp_path):
    """An event owed to a sink when the snapshot was taken is delivered after the restore, and
    so are events published later, even when the database the snapshot came from had run more
    PostgreSQL transactions than this one (its transaction ids are ahead)."""
    from cryptography.fernet import Fernet

    from simplane.events import outbox
    from tests.events.conftest import CONNECTION, Fleet, active_webhook, deliveries, subscribe

    key = Fernet.generate_key().decode()

    def serve(url: str):  # type: ignore[no-untyped-def]
        clock = ManualClock()
        settings = Settings(database_url=url, secret_key=key, run_workers=False)
        return start_server(Runtime(settings, clock=clock))

    def publish(server, account_sid: str, fleet: Fleet) -> str:  # type: ignore[no-untyped-def]
        [started] = [r for r in fleet.rows(updates=0) if r["type"].endswith("started")]
        with server.runtime.db.write() as db:
            [event_id] = outbox.publish_many(db, [started])
        return event_id

    receiver = Receiver()
    source = serve(old_url)
    try:
        account = source.new_account()
        sink = active_webhook(account, source, receiver)
        subscribe(account, sink, [CONNECTION + "data-session.started"])
        owed = publish(source, account.sid, Fleet(account.sid, 1))
        snapshot = tmp_path / "events.jsonl"
        take(source.runtime.db.engine, snapshot)
    finally:
        source.stop()
    if other_url.startswith("postgresql"):  # from a cluster whose transaction ids are ahead
        lines, table = [], ""
        for line in snapshot.read_text().splitlines():
            record = json.loads(line)
            if isinstance(record, dict) and "table" in record:
                table, columns = record["table"], record["columns"]
            elif isinstance(record, list) and table in POSITIONS:
                record[columns.index(POSITIONS[table])] += 10**12
                line = json.dumps(record)
            lines.append(line)
        snapshot.write_text("\n".join(lines) + "\n")

    result = cli("db", "restore", str(snapshot), "--database-url", other_url)
    assert result.exit_code == 0, result.output
    restored = serve(other_url)
    try:
        restored.drain()
        assert [e["id"] for e in deliveries(receiver.get())] == [owed]
        later = publish(restored, account.sid, Fleet(account.sid, 1))
        restored.drain()
        assert [e["id"] for e in deliveries(receiver.get())] == [later]
    finally:
        restored.stop()
        receiver.close()


# The fleet in tests/fixtures/fleet-0016.jsonl: a snapshot checked in at revision 0016, as a team
# would keep one, so that every later schema is tested to upgrade it. Its auth token is sealed
# with this key (a test key, and not a secret).
FIXTURE = Path(__file__).parent / "fixtures" / "fleet-0016.jsonl"
FIXTURE_KEY = "c2ltcGxhbmUgZml4dHVyZSBrZXksIG5vIHNlY3JldCE="
FIXTURE_ACCOUNT = ("AC" + "f1" * 16, "fixturetoken" + "0" * 20)


def test_a_checked_in_fixture_fleet_is_restored(other_url):
    from datetime import UTC, datetime

    from simplane.core.models import Account

    result = cli("db", "restore", str(FIXTURE), "--database-url", other_url)
    assert result.exit_code == 0, result.output
    clock = ManualClock(datetime(2026, 1, 1, 1, tzinfo=UTC))
    restored = start_server(Runtime(Settings(
        database_url=other_url, secret_key=FIXTURE_KEY, run_workers=False), clock=clock))
    try:
        client = restored.client(*FIXTURE_ACCOUNT)
        wireless = client.wireless.v1
        assert len(wireless.sims.list(status="active")) == 3
        tracker = wireless.sims("tracker-1").fetch()
        assert tracker.rate_plan_sid == wireless.rate_plans("fleet").fetch().sid
        [record] = wireless.sims("tracker-1").usage_records.list()
        assert (record.data["upload"], record.data["download"]) == (1000, 5000)
        assert [c.command for c in wireless.commands.list()] == ["wake up"]
        [service] = client.proxy.v1.services.list()
        assert client.proxy.v1.services(service.sid).sessions("ride-1").fetch().ttl == 3600
        assert len(client.proxy.v1.services(service.sid).phone_numbers.list()) == 2
        assert [s.description for s in client.events.v1.sinks.list()] == ["fleet events"]
        with restored.runtime.db.read() as db:  # sealed as it was, and opened with its key
            sealed = db.query(Account.auth_token_sealed).one()[0]
        assert restored.runtime.box.open(sealed) == FIXTURE_ACCOUNT[1]
    finally:
        restored.stop()


def test_a_file_that_cannot_be_written_or_read_is_a_one_line_error(other_url, tmp_path):
    missing = tmp_path / "no such folder" / "fleet.snapshot"
    result = cli("db", "snapshot", str(missing), "--database-url", other_url)
    assert result.exit_code == 1 and "No such file or directory" in result.stderr
    assert not missing.parent.exists()
    result = cli("db", "restore", str(missing), "--database-url", other_url)
    assert result.exit_code == 1 and "cannot read" in result.stderr
