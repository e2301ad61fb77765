"""Bulk statements for batches of thousands of rows, sent to the driver as they are (rows as
tuples): SQLAlchemy's per-row parameter processing would cost more than the database does.
Values still go through the column types' own bind and result processors, so they are stored
and read exactly as SQLAlchemy stores and reads them. SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import Any

from sqlalchemy.orm import Session

from simplane.core.db import UTCDateTime

_pauses = 0  # batches running with the collector held off
_restore = False  # whether the collector was on before the first of them
_off_since = 0.0
_pause_lock = threading.Lock()
LONGEST_PAUSE = 5.0  # seconds: batches that overlap without end still let it collect this often


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector while a batch builds its tens of thousands of
    short-lived rows: each allocation burst would otherwise set off collections of the whole
    heap, a quarter of a batch's time. Reference counting still frees the rows at once; only
    cycles wait for the end of the batch (or, while batches of several threads keep
    overlapping, for a collection every LONGEST_PAUSE seconds). Reentrant and thread-safe."""
    global _pauses, _restore, _off_since
    with _pause_lock:
        if _pauses == 0:
            _restore = gc.isenabled()
            _off_since = time.monotonic()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        collect = False
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _restore:
                gc.enable()
            elif _restore and time.monotonic() - _off_since > LONGEST_PAUSE:
                _off_since = time.monotonic()
                collect = True
        if collect:
            gc.collect()


# Timestamps repeat within a batch (the hour of a rollup, the time of a round of updates):
# their processors' results are kept for the length of one statement. Only UTCDateTime's: equal
# datetimes are the same instant, which it stores (and reads) as one UTC value.
TIMESTAMPS = UTCDateTime


def _repeating(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    seen: dict[Any, Any] = {}

    def processed(value: Any) -> Any:
        try:
            return seen[value]
        except KeyError:
            result = seen[value] = process(value)
            return result

    return processed


class BulkSql:
    """Bulk statements on the connection of a session (inside its transaction)."""

    def __init__(self, db: Session) -> None:
        self.connection = db.connection()
        self.dialect = self.connection.dialect
        self.mark = "?" if self.dialect.paramstyle == "qmark" else "%s"

    def _run(self, statement: str, table, names: Sequence[str], rows: Iterable[tuple]) -> None:  # type: ignore[no-untyped-def]
        processors = [(i, _repeating(p) if isinstance(table.c[name].type, TIMESTAMPS) else p)
                      for i, name in enumerate(names)
                      if (p := table.c[name].type._cached_bind_processor(self.dialect))]
        if processors:
            values = [list(row) for row in rows]
            for row in values:
                for i, process in processors:
                    if row[i] is not None:
                        row[i] = process(row[i])
            rows = [tuple(row) for row in values]
        else:
            rows = list(rows)
        if rows:
            self.connection.exec_driver_sql(statement, rows)

    def insert(self, table, names: Sequence[str], rows: Iterable[tuple]) -> None:  # type: ignore[no-untyped-def]
        """INSERT INTO table (names) VALUES …, one row per tuple."""
        marks = ", ".join([self.mark] * len(names))
        columns = ", ".join(f'"{name}"' for name in names)
        self._run(f"INSERT INTO {table.name} ({columns}) VALUES ({marks})", table, names, rows)

    def select_in(self, columns: Sequence, source: str, keys: Sequence,
                  values: Iterable[tuple], processed: bool = True) -> list[tuple]:
        """SELECT columns FROM source WHERE (keys) IN values, the values sent as one parameter
        per key column (a JSON array on SQLite, arrays on PostgreSQL), rows read back through
        the columns' result processors (unless not `processed`: the driver's values)."""
        values = list(values)
        if not values:
            return []
        wanted = ", ".join(f'{c.table.name}."{c.name}"' for c in columns)
        target = ", ".join(f'{c.table.name}."{c.name}"' for c in keys)
        if self.dialect.name == "sqlite":
            picks = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(keys)))
            among = f"SELECT {picks} FROM json_each(?)"
            params: tuple = (json.dumps(values),)
        else:
            among = "SELECT * FROM unnest(" + ", ".join(["%s::text[]"] * len(keys)) + ")"
            params = tuple(list(column) for column in zip(*values, strict=True))
        result = self.connection.exec_driver_sql(
            f"SELECT {wanted} FROM {source} WHERE ({target}) IN ({among})", params)
        types = [d[1] for d in result.cursor.description]
        rows = result.fetchall()
        processors = [(i, _repeating(p) if isinstance(c.type, TIMESTAMPS) else p)
                      for i, c in enumerate(columns) if processed
                      and (p := c.type._cached_result_processor(self.dialect, types[i]))]
        if not processors:
            return [tuple(row) for row in rows]
        out = []
        for row in rows:
            values = list(row)
            for i, process in processors:
                values[i] = process(values[i])
            out.append(tuple(values))
        return out

    def update(self, table, key: str, names: Sequence[str],  # type: ignore[no-untyped-def]
               rows: Iterable[dict[str, Any]]) -> None:
        """UPDATE table SET names… WHERE key = …, one statement per row (a dict holding the
        names and the key)."""
        sets = ", ".join(f'"{name}" = {self.mark}' for name in names)
        self._run(f'UPDATE {table.name} SET {sets} WHERE "{key}" = {self.mark}', table,
                  [*names, key], map(itemgetter(*names, key), rows))

    def upsert_add(self, table, keys: Sequence[str], names: Sequence[str],  # type: ignore[no-untyped-def]
                   counters: Sequence[str], rows: Iterable[tuple]) -> None:
        """INSERT … ON CONFLICT (keys) DO UPDATE adding the counters (SQLite and PostgreSQL)."""
        marks = ", ".join([self.mark] * len(names))
        adds = ", ".join(f"{c} = {table.name}.{c} + excluded.{c}" for c in counters)
        self._run(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks}) "
                  f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {adds}", table, names, rows)


def move_status(db: Session, model: Any, moves: dict[int, str | None], from_status: str,
                status: str, now: Any) -> list[Any]:
    """Rows of `model` (a command table with `status` and `smsc_message_id`) whose pk is in
    `moves` and still in `from_status`, moved to `status` in one statement, each storing the
    message_id `moves` gives it (None keeps the one it has). Returns the rows moved, locked for
    the rest of the transaction and with their new values."""
    from sqlalchemy import Table, bindparam, select, update
    from sqlalchemy.orm.attributes import set_committed_value

    rows = list(db.scalars(select(model).where(model.pk.in_(sorted(moves)),
                                               model.status == from_status).with_for_update()))
    if not rows:
        return []
    table: Table = model.__table__
    db.execute(update(table).where(table.c.pk == bindparam("b_pk"), table.c.status == from_status)
               .values(status=status, date_updated=now, smsc_message_id=bindparam("b_message_id")),
               [{"b_pk": row.pk, "b_message_id": moves[row.pk] or row.smsc_message_id}
                for row in rows])
    for row in rows:
        set_committed_value(row, "status", status)
        set_committed_value(row, "smsc_message_id", moves[row.pk] or row.smsc_message_id)
    return rows


def copy_rows(db: Session, table: Any, columns: Sequence[str], rows: Iterable[Sequence[Any]]
              ) -> bool:
    """On PostgreSQL, COPY `rows` (tuples in `columns` order, values as the driver takes them:
    aware datetimes, str, int, None) into `table` in the session's transaction: the database's
    own bulk path, several times an executemany's rate. False on other databases (the caller
    inserts as usual)."""
    if db.get_bind().dialect.name != "postgresql":
        return False
    raw: Any = db.connection().connection.driver_connection
    names = ", ".join(f'"{c}"' for c in columns)
    with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)
    return True
