"""Snapshots: every table's rows in one portable file, restored on SQLite or PostgreSQL alike.

A snapshot is JSON lines, gzip-compressed unless its name ends in `.jsonl`:

    {"format": "simplane-snapshot", "version": 1, "revisions": ["0016"], "dialect": "sqlite",
     "taken_at": "...", "tables": {"accounts": 2, ...}}
    {"table": "accounts", "columns": ["pk", "sid", ...]}
    [1, "AC…", ...]                                   one line per row
    ...
    {"end": true, "rows": 1234}

Tables come in dependency order (parents before children), each read from the database's own
schema, so any table a migration adds is carried without being named here. Values are JSON;
timestamps are ISO 8601 with their offset, binary is base64 and decimals are strings, decoded by
the type of the column they are restored into. `revisions` are the Alembic revisions of the schema the
rows fit: a snapshot of an older schema is restored into a scratch database at its revisions,
upgraded there by the migrations, then copied. Restoring replaces every row of the database in
one transaction: a file that is not a whole snapshot is refused and changes nothing.
"""

from __future__ import annotations

import base64
import gzip
import os
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from simplane.core.clock import utc
from simplane.core.db import alembic_config, make_engine

FORMAT = "simplane-snapshot"
VERSION = 1
BATCH = 1000
SKIPPED = {"alembic_version", "role_leases"}  # revisions travel in the header; leases are
# about the processes on the database the snapshot was taken from

Advance = Callable[[int], None]  # told how many more rows were written or read
Start = Callable[[str, int], Advance]  # (what is under way, rows in all) → its Advance


class SnapshotError(Exception):
    """The file cannot be restored (the message says why, in one line)."""


def _ignore(_rows: int) -> None:
    pass


# --- taking ---------------------------------------------------------------------------------

def take(engine: Engine, path: Path, start: Start | None = None) -> int:
    """Write every row of the database to `path` (atomically: a snapshot that fails leaves no
    file). `start(step, total_rows)` returns what is told of the progress. Returns the rows
    written."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    os.close(fd)
    try:
        with _consistent(engine) as conn, _open_for_writing(Path(tmp), path) as out:
            rows = _dump(conn, out, start)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return rows


@contextmanager
def _consistent(engine: Engine) -> Iterator[Connection]:
    """One read transaction that sees every table at the same moment."""
    options: dict[str, Any] = {}
    if engine.dialect.name == "postgresql":
        options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    with engine.connect().execution_options(**options) as conn, conn.begin():
        yield conn


@contextmanager
def _open_for_writing(tmp: Path, path: Path) -> Iterator[IO[bytes]]:
    if path.name.endswith(".jsonl"):
        with open(tmp, "wb") as out:
            yield out
    else:
        with gzip.open(tmp, "wb", compresslevel=6) as out:
            yield cast(IO[bytes], out)


def _dump(conn: Connection, out: IO[bytes], start: Start | None) -> int:
    tables = _tables(conn)
    counts = {str(t.name): conn.scalar(sa.select(sa.func.count()).select_from(t)) or 0
              for t in tables}
    _line(out, {"format": FORMAT, "version": VERSION, "revisions": _revisions(conn),
                "dialect": conn.dialect.name, "taken_at": datetime.now(UTC).isoformat(),
                "tables": counts})
    advance = start("snapshot", sum(counts.values())) if start else _ignore
    written = 0
    for table in tables:
        _line(out, {"table": table.name, "columns": [c.name for c in table.columns]})
        query = sa.select(*table.columns).order_by(*(table.primary_key.columns or table.columns))
        result = conn.execution_options(yield_per=BATCH).execute(query)
        for chunk in result.partitions():
            out.write(b"".join(orjson.dumps(tuple(row), default=_encode, option=ROW)
                               for row in chunk))
            written += len(chunk)
            advance(len(chunk))
    _line(out, {"end": True, "rows": written})
    return written


def _line(out: IO[bytes], record: dict[str, Any]) -> None:
    out.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))


def _tables(conn: Connection) -> list[sa.Table]:
    """The database's tables as they are (whatever its revision), parents before children."""
    metadata = sa.MetaData()
    metadata.reflect(conn)
    return [t for t in metadata.sorted_tables if t.name not in SKIPPED]


def _revisions(conn: Connection) -> list[str]:
    from alembic.runtime.migration import MigrationContext

    return sorted(MigrationContext.configure(conn).get_current_heads())


# A row is a JSON array; timestamps are ISO 8601 with their offset (naive ones, as SQLite gives
# them, are UTC), dates and times ISO 8601, UUIDs strings; the rest as _encode says.
ROW = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NAIVE_UTC


def _encode(value: Any) -> Any:
    """What JSON does not have: binary as base64, decimals as strings."""
    if isinstance(value, (bytes, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot write a {type(value).__name__} to a snapshot")


# --- restoring ------------------------------------------------------------------------------

def restore(engine: Engine, path: Path, start: Start | None = None,
            after: Callable[[Connection], None] | None = None) -> int:
    """Replace every row of the database (whose schema is at the newest revision) with the
    snapshot's, in one transaction, ending with `after(connection)`. Returns the rows restored;
    raises SnapshotError, changing nothing, when the file is not a whole snapshot this schema
    can take."""
    with _reader(path) as lines:
        header = _header(lines)
        with engine.connect() as conn:
            current = _revisions(conn)
        if header["revisions"] == current:
            return _load(engine, header, lines, start, after)
        _check_known(engine, header["revisions"], current)
    # An older schema: its rows go into a scratch database at their revisions, the migrations
    # upgrade them there, and the upgraded rows are what is restored.
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'upgrade.db'}"
        _migrate(url, header["revisions"])
        scratch_engine = make_engine(url)
        try:
            with _reader(path) as lines:
                _load(scratch_engine, _header(lines), lines, start,
                      step=f"upgrade from {', '.join(header['revisions'])}")
            _migrate(url, ["heads"])
            upgraded = Path(scratch) / "upgraded.jsonl"
            take(scratch_engine, upgraded)
        finally:
            scratch_engine.dispose()
        with _reader(upgraded) as lines:
            return _load(engine, _header(lines), lines, start, after)


def _migrate(url: str, targets: list[str]) -> None:
    from alembic import command

    for target in targets:
        try:
            command.upgrade(alembic_config(url), target)
        except sa.exc.DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            raise SnapshotError(f"the migrations could not upgrade the snapshot's rows: {reason}"
                                ) from None


def _check_known(engine: Engine, revisions: list[str], current: list[str]) -> None:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    script = ScriptDirectory.from_config(alembic_config(engine.url.render_as_string(False)))
    for revision in revisions:
        try:
            known = script.get_revision(revision) is not None
        except CommandError:
            known = False
        if not known:
            raise SnapshotError(f"the snapshot's schema (revision {revision}) is unknown to this "
                                "simplane: restore it with the version that took it, or a newer one")
    older = {r.revision for head in current for r in script.iterate_revisions(head, "base")}
    if not set(revisions) <= older:
        raise SnapshotError(f"the snapshot's schema (revisions {', '.join(revisions)}) is not "
                            f"an ancestor of this database's ({', '.join(current)})")


@contextmanager
def _reader(path: Path) -> Iterator[Iterator[Any]]:
    """The file's records, one per line; any fault in reading it is a SnapshotError."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 (closed below; opening it is what may fail)
    except OSError as exc:
        raise SnapshotError(f"cannot read {path}: {exc.strerror}") from None
    with raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream: Any = gzip.GzipFile(fileobj=raw) if gzipped else raw
        yield _records(stream, gzipped)


def _records(stream: IO[bytes], gzipped: bool) -> Iterator[Any]:
    number = 0
    try:
        for number, line in enumerate(stream, 1):  # noqa: B007 (the errors tell it)
            yield orjson.loads(line)
    except (OSError, EOFError, zlib.error) as exc:
        if number == 0 and not gzipped:
            raise SnapshotError("not a simplane snapshot (neither JSON lines nor gzip)") from None
        raise SnapshotError(f"the file is damaged after line {number} ({exc})") from None
    except ValueError:
        if number == 1:
            raise SnapshotError("not a simplane snapshot (its first line is not JSON)") from None
        raise SnapshotError(f"line {number} is not JSON: the snapshot is damaged") from None


def _header(lines: Iterator[Any]) -> dict[str, Any]:
    try:
        header = next(lines)
    except StopIteration:
        raise SnapshotError("the file is empty") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SnapshotError("not a simplane snapshot (no simplane-snapshot header)")
    if header.get("version") != VERSION:
        raise SnapshotError(f"snapshot format version {header.get('version')!r} is not one this "
                            f"simplane reads ({VERSION})")
    revisions, tables = header.get("revisions"), header.get("tables")
    if not (isinstance(revisions, list) and revisions and isinstance(tables, dict)
            and all(isinstance(r, str) for r in revisions)):
        raise SnapshotError("the snapshot's header is damaged")
    header["revisions"] = sorted(revisions)
    return header


def _load(engine: Engine, header: dict[str, Any], lines: Iterator[Any],
          start: Start | None = None, after: Callable[[Connection], None] | None = None,
          step: str = "restore") -> int:
    expected: dict[str, Any] = header["tables"]
    total = sum(n for n in expected.values() if isinstance(n, int))
    advance = start(step, total) if start else _ignore
    with engine.begin() as conn:
        tables = {t.name: t for t in _tables(conn)}
        for each in reversed(list(tables.values())):
            conn.execute(each.delete())
        loaded, counts, ended = 0, dict.fromkeys(expected, 0), False
        table: sa.Table | None = None
        decoders: list[Callable[[Any], Any]] = []
        batch: list[dict[str, Any]] = []
        names: list[str] = []

        def flush() -> None:
            if batch:
                assert table is not None
                _insert(conn, table, batch)
                advance(len(batch))
                batch.clear()

        for record in lines:
            if ended:
                raise SnapshotError("the file goes on after its end")
            if isinstance(record, list):
                if table is None or len(record) != len(names):
                    raise SnapshotError("a row does not fit its table: the snapshot is damaged")
                try:
                    batch.append({n: d(v) for n, d, v in zip(names, decoders, record,
                                                             strict=True)})
                except (ValueError, TypeError, ArithmeticError):
                    raise SnapshotError(f"a row of table {table.name!r} holds a value its "
                                        "column cannot: the snapshot is damaged") from None
                counts[table.name] += 1
                loaded += 1
                if len(batch) >= BATCH:
                    flush()
            elif isinstance(record, dict) and "table" in record:
                flush()
                table, names = _table(tables, record, expected)
                decoders = [_decoder(table.columns[n]) for n in names]
            elif isinstance(record, dict) and record.get("end") is True:
                flush()
                ended = record.get("rows") == loaded
                if not ended:
                    raise SnapshotError("the snapshot's rows do not add up: it is damaged")
            else:
                raise SnapshotError("a line is neither a table, a row nor the end: "
                                    "the snapshot is damaged")
        if not ended:
            raise SnapshotError("the file ends early: the snapshot is cut short")
        if counts != expected:
            raise SnapshotError("the snapshot's tables do not hold the rows its header counts")
        _reset_sequences(conn, list(tables.values()))
        if after is not None:
            after(conn)
    return loaded


def _table(tables: dict[str, sa.Table], record: dict[str, Any], expected: dict[str, Any]
           ) -> tuple[sa.Table, list[str]]:
    name, columns = record["table"], record.get("columns")
    if name not in tables or name not in expected:
        raise SnapshotError(f"the snapshot has a table {name!r} its schema does not")
    table = tables[name]
    if not isinstance(columns, list) or not set(columns) <= set(table.columns.keys()):
        unknown = sorted(set(columns or []) - set(table.columns.keys()))
        raise SnapshotError(f"table {name!r} has columns its schema does not: "
                            f"{', '.join(map(str, unknown)) or 'none listed'}")
    return table, columns


def _insert(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    try:
        conn.execute(table.insert(), rows)
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise SnapshotError(f"table {table.name!r} refused the snapshot's rows: {reason}"
                            ) from None


def _decoder(column: sa.Column[Any]) -> Callable[[Any], Any]:
    """From a snapshot's JSON value to what the column takes."""
    kind = column.type
    if isinstance(kind, sa.JSON):
        return _keep
    if isinstance(kind, sa.DateTime):
        aware = bool(kind.timezone)
        return lambda v: None if v is None else _timestamp(v, aware)
    if isinstance(kind, sa.Date):
        return lambda v: None if v is None else date.fromisoformat(v)
    if isinstance(kind, sa.Time):
        return lambda v: None if v is None else time.fromisoformat(v)
    if isinstance(kind, sa.LargeBinary):
        return lambda v: None if v is None else base64.b64decode(v, validate=True)
    if isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float):
        return lambda v: None if v is None else Decimal(str(v))
    if isinstance(kind, sa.Boolean):
        return lambda v: None if v is None else bool(v)
    return _keep


def _keep(value: Any) -> Any:
    return value


def _timestamp(value: str, aware: bool) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC) if aware else moment
    return utc(moment) if aware else utc(moment).replace(tzinfo=None)


def _reset_sequences(conn: Connection, tables: list[sa.Table]) -> None:
    """PostgreSQL's sequences go past the restored keys, so new rows get keys of their own."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        for column in table.primary_key.columns:
            if not isinstance(column.type, sa.Integer):
                continue
            sequence = conn.scalar(sa.text("SELECT pg_get_serial_sequence(:t, :c)"),
                                   {"t": f'"{table.name}"', "c": column.name})
            if sequence:
                top = conn.scalar(sa.select(sa.func.max(column)))
                conn.execute(sa.text("SELECT setval(CAST(:s AS regclass), :v, :called)"),
                             {"s": sequence, "v": top or 1, "called": top is not None})
