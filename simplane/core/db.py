"""Engine, sessions and migrations. SQLite (WAL) by default; PostgreSQL through psycopg 3."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import DateTime, MetaData, String, Text, create_engine, event, literal_column
from sqlalchemy import cast as cast_
from sqlalchemy.engine import Connection, CursorResult, Dialect, Engine, Result
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from simplane.core.clock import utc

if TYPE_CHECKING:
    from alembic.config import Config

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator):
    """Timestamps stored as UTC and always read back aware, on every engine."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect
                             ) -> datetime | None:
        return None if value is None else utc(value)


class twilio_time(FunctionElement[str]):
    """A timestamp column in Twilio's format (clock.iso: ISO 8601 UTC, whole seconds, a literal
    Z), written by the database: for rows of many timestamps, read as text (see Prepared)."""

    type = String()
    name = "twilio_time"
    inherit_cache = True


@compiles(twilio_time, "sqlite")
def _twilio_time_sqlite(element: twilio_time, compiler: Any, **kw: Any) -> str:
    # Stored as UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]' (UTCDateTime, SQLite's own
    # CURRENT_TIMESTAMP): its date and its time without the fraction, as iso writes them
    # (strftime, which parses the text first, takes several times as long).
    value = compiler.process(element.clauses, **kw)
    return f"substr({value}, 1, 10) || 'T' || substr({value}, 12, 8) || 'Z'"


@compiles(twilio_time, "postgresql")
def _twilio_time_postgresql(element: twilio_time, compiler: Any, **kw: Any) -> str:
    return ("to_char(" + compiler.process(element.clauses, **kw)
            + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")


class json_object(FunctionElement[str]):
    """A JSON object built by the database from (key, value) pairs, its text read as it is
    (SQLite's json_object, PostgreSQL's json_build_object): the rows of a page sent without a
    Python object per field (see orjson.Fragment). On SQLite it costs less than building the
    dict in Python; PostgreSQL's takes longer (about 9 µs a row of 20 fields). Keys are constants of the code, written
    into the statement; an object nested as a value is embedded as JSON, NULL is null."""

    type = String()
    name = "json_object"
    inherit_cache = True

    def __init__(self, *pairs: tuple[str, Any]) -> None:
        args: list[Any] = []
        for key, value in pairs:
            if not key.replace("_", "").isalnum():
                raise ValueError(f"json_object: a key of letters, digits and _: {key!r}")
            args += [literal_column(f"'{key}'"), value]
        super().__init__(*args)


@compiles(json_object, "sqlite")
def _json_object_sqlite(element: json_object, compiler: Any, **kw: Any) -> str:
    return "json_object(" + compiler.process(element.clauses, **kw) + ")"


@compiles(json_object, "postgresql")
def _json_object_postgresql(element: json_object, compiler: Any, **kw: Any) -> str:
    # json, not jsonb (which reorders keys); read as text (json_text), not parsed by the driver
    return "json_build_object(" + compiler.process(element.clauses, **kw) + ")"


def json_text(obj: json_object) -> Any:
    """A json_object as the text of its JSON (PostgreSQL's driver would parse json)."""
    return cast_(obj, Text)


def changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed (`Session.execute` is typed to return a
    `Result`; for those statements it is a `CursorResult`, which counts them)."""
    return cast(CursorResult[Any], result).rowcount


# How long a transaction run on the event loop (Database.read_now/write_now) lets PostgreSQL
# wait for a row lock before it gives up (ms), to be run again on a thread.
NOW_LOCK_TIMEOUT_MS = 2


SQLITE_MMAP = 1 << 30  # bytes of the database file mapped (address space, not memory)
SQLITE_CACHE_KIB = 8 * 1024  # each connection's page cache


def make_engine(url: str, immediate: bool = False, wait: bool = True, pool_size: int = 20
                ) -> Engine:
    """An engine; on SQLite, `immediate` makes every transaction BEGIN IMMEDIATE (a writer).
    Without `wait`, a lock held elsewhere fails a statement at once (SQLite) or after
    NOW_LOCK_TIMEOUT_MS (PostgreSQL) instead of waiting for it, and connections are not
    pinged when they are checked out (a dead one fails the statement, as a lock does)."""
    if not url.startswith("sqlite"):
        if wait:
            return create_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)
        # In UTC (the same instants as any other zone), timestamps come back with the driver's
        # datetime.UTC as their zone, which formatting them takes as it is.
        return create_engine(url, pool_size=pool_size, max_overflow=pool_size, connect_args={
            "options": f"-c lock_timeout={NOW_LOCK_TIMEOUT_MS} -c timezone=UTC"})
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30 if wait else 0},
        pool_size=pool_size, max_overflow=20,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" event below owns BEGIN
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        # Pages read through memory rather than a read() each, and more of them kept: a page of
        # 50 SIMs touches a few hundred pages of the table, its index and their rate plans.
        cur.execute(f"PRAGMA mmap_size={SQLITE_MMAP}")
        cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cur.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        if conn.get_execution_options().get(NO_BEGIN):
            return  # each statement its own transaction (Database.read_now)
        try:  # on the driver's connection: SQLAlchemy's execution costs ten times the BEGIN
            cast(Any, conn.connection.driver_connection).execute(begin)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(begin, (), exc, sqlite3.Error) from exc

    return engine


# An execution option of an SQLite connection whose transactions begin nothing: each statement
# is one of its own (SQLite's autocommit), for reads (Database.read_now).
NO_BEGIN = "simplane_no_begin"


# Session.info: the connection of a session whose statements are each a transaction of their
# own (Database.read_now), on which Prepared runs without a session transaction.
AUTOCOMMIT_CONNECTION = "simplane_autocommit_connection"


class Busy(Exception):
    """A transaction that must not wait would have had to (a lock held elsewhere, a lost
    connection): it was rolled back, and may be run again where waiting is fine."""


class Database:
    """Sessions for reading and for writing.

    On SQLite, writers take an in-process lock and BEGIN IMMEDIATE, so writers queue instead of
    failing to upgrade a read lock, and readers never block; PostgreSQL needs neither.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = make_engine(url, immediate=self.is_sqlite)
        self.read_engine = make_engine(url) if self.is_sqlite else self.engine
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        self._reader = sessionmaker(self.read_engine, expire_on_commit=False)
        self._write_lock = threading.RLock() if self.is_sqlite else None
        # Transactions that must not wait (run on the event loop, read_now and write_now): on
        # SQLite reads never wait in WAL mode, and writes take the lock above only when it is
        # free, and BEGIN IMMEDIATE fails at once when another process writes. On PostgreSQL a
        # write is several round trips (BEGIN, its statements, COMMIT), each of which would
        # hold the event loop while the server is busy: writes there are best on threads.
        # Each thread that runs them (the event loop's) keeps its connections.
        self.writes_inline = self.is_sqlite
        self.now_engine = make_engine(url, immediate=self.is_sqlite, wait=False, pool_size=2)
        self._now_read_engine = self.read_engine if self.is_sqlite else self.now_engine
        self._now_connections: dict[tuple[int, Engine, bool], tuple[Connection, Session]] = {}
        self._now_lock = threading.Lock()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction that commits at the end, or rolls back whole on any exception."""
        lock = self._write_lock or nullcontext()
        with lock, self._writer() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session, session.begin():
            yield session

    @contextmanager
    def read_now(self) -> Iterator[Session]:
        """`read`, for the event loop: on PostgreSQL, on a connection that is not pinged first
        and never waits for a lock (else Busy); without BEGIN and COMMIT (on PostgreSQL each
        one a round trip): at PostgreSQL's READ COMMITTED every statement sees the data as of
        its own start in a transaction too, so reads see what they would in one; on SQLite
        each statement reads one snapshot of its own, as it would at READ COMMITTED."""
        with self._now(self._now_read_engine, autocommit=True) as session:
            yield session

    @contextmanager
    def write_now(self) -> Iterator[Session]:
        """`write`, for the event loop: Busy, rolled back, rather than waiting for a lock that
        another thread or process holds (SQLite's write lock, a PostgreSQL row lock) or on a
        connection that was lost. The caller runs the transaction again on a thread."""
        lock = self._write_lock
        if lock is not None and not lock.acquire(blocking=False):
            raise Busy()
        try:
            with self._now(self.now_engine) as session:
                session.connection()  # BEGIN IMMEDIATE on SQLite: fails now, or never
                yield session
        finally:
            if lock is not None:
                lock.release()

    @contextmanager
    def write_one_now(self) -> Iterator[Session]:
        """`write_now` for a write of one statement: on PostgreSQL, without BEGIN and COMMIT
        (the statement is a transaction of its own: one round trip), on a connection that
        never waits for a lock (else Busy, nothing written)."""
        if self.writes_inline:
            with self.write_now() as session:
                yield session
        else:
            with self._now(self.now_engine, autocommit=True) as session:
                yield session

    @contextmanager
    def _now(self, engine: Engine, autocommit: bool = False) -> Iterator[Session]:
        """One transaction on this thread's own connection to `engine` and its own session,
        both kept from one transaction to the next (no checkout from the pool, no new Session
        each time; `autocommit`: no transaction, each statement its own); a connection that
        failed (OperationalError: a lock, or lost) is closed, and the transaction is Busy."""
        key = (threading.get_ident(), engine, autocommit)
        kept = self._now_connections.get(key)
        if kept is None or kept[0].closed or kept[0].invalidated or kept[0].in_transaction():
            if kept is not None:
                kept[1].close()
                kept[0].close()
            conn = engine.connect()
            if autocommit and self.is_sqlite:  # no BEGIN: the driver commits each statement
                conn = conn.execution_options(**{NO_BEGIN: True})
            elif autocommit:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            session = Session(bind=conn, expire_on_commit=False)
            if autocommit:  # Prepared's statements run on it without a session transaction
                session.info[AUTOCOMMIT_CONNECTION] = conn
            kept = (conn, session)
            with self._now_lock:
                self._now_connections[key] = kept
        conn, session = kept
        try:
            if autocommit:  # a transaction of the session's only if the ORM asks for one
                yield session
                if session.in_transaction():
                    session.commit()
            else:
                with session.begin():
                    yield session
        except OperationalError as exc:
            with self._now_lock:
                self._now_connections.pop(key, None)
            with suppress(Exception):
                session.close()
                conn.close()
            raise Busy() from exc
        except BaseException:
            session.close()  # nothing of it kept for the next one
            raise
        if session.identity_map:
            session.expunge_all()

    def dispose(self) -> None:
        with self._now_lock:
            connections = list(self._now_connections.values())
            self._now_connections.clear()
        for conn, session in connections:
            with suppress(Exception):
                session.close()
                conn.close()
        self.now_engine.dispose()
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


class Prepared:
    """A Core statement compiled once for each dialect and run on the DBAPI cursor of a
    session's connection, in its transaction: for the hottest reads, where SQLAlchemy's
    execution costs several times what the query does. Bound values go through the
    statement's bind types; rows are plain tuples of what the driver returns (no result types:
    timestamps are text on SQLite, see clock.iso_value). Errors are SQLAlchemy's, as
    `Session.execute` raises them."""

    def __init__(self, stmt: Executable) -> None:
        self.stmt = stmt
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any],
                                        dict[str, Any]]] = {}

    def _compile(self, dialect: Dialect) -> tuple[str, tuple[str, ...] | None, dict[str, Any],
                                                  dict[str, Any]]:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = cast(Any, self.stmt).compile(dialect=dialect)
            if compiled.literal_execute_params or compiled.post_compile_params \
                    or compiled.escaped_bind_names:
                raise ValueError("Prepared takes statements with plain bind parameters only")
            names = tuple(compiled.positiontup) if compiled.positional else None
            found = (compiled.string, names, dict(compiled.params),
                     dict(compiled._bind_processors))
            self._compiled[dialect.name] = found
        return found

    def rows(self, db: Session, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of a SELECT (or of RETURNING)."""
        return cast(list[tuple[Any, ...]], self._run(db, params, True))

    def run(self, db: Session, params: dict[str, Any]) -> int:
        """Run an INSERT, UPDATE or DELETE: how many rows it changed."""
        return cast(int, self._run(db, params, False))

    def _run(self, db: Session, params: dict[str, Any], fetch: bool) -> list[Any] | int:
        conn = db.info.get(AUTOCOMMIT_CONNECTION)
        if conn is None or db.in_transaction():
            db.flush()  # what the session holds goes first, as Session.execute does
            conn = db.connection()
        dialect = conn.dialect
        sql, names, defaults, processors = self._compile(dialect)
        values = {**defaults, **params}
        for name, process in processors.items():
            values[name] = process(values[name])
        args: Any = values if names is None else [values[name] for name in names]
        raw = conn.connection
        cursor = raw.cursor()
        try:
            cursor.execute(sql, args)
            return cast(list[Any], cursor.fetchall()) if fetch else int(cursor.rowcount)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, raw.dbapi_connection, cursor):
                conn.invalidate(exc)
            raise DBAPIError.instance(sql, args, exc, dialect.loaded_dbapi.Error) from exc
        finally:
            cursor.close()


MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    """Bring the schema to the newest revision of every product (alembic heads)."""
    from alembic import command

    command.upgrade(alembic_config(url), "heads")
