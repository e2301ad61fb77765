"""Bulk statements for batches of thousands of rows, sent to the driver as they are (rows as
tuples): SQLAlchemy's per-row parameter processing would cost more than the database does.
Values still go through the column types' own bind and result processors, so they are stored
and read exactly as SQLAlchemy stores and reads them. SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.orm import Session


class BulkSql:
    """Bulk statements on the connection of a session (inside its transaction)."""

    def __init__(self, db: Session) -> None:
        self.connection = db.connection()
        self.dialect = self.connection.dialect
        self.mark = "?" if self.dialect.paramstyle == "qmark" else "%s"

    def _run(self, statement: str, table, names: Sequence[str], rows: Iterable[tuple]) -> None:  # type: ignore[no-untyped-def]
        processors = [(i, p) for i, name in enumerate(names)
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

    def select_in(self, columns: Sequence, source: str, keys: Sequence,  # type: ignore[no-untyped-def]
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
        processors = [(i, p) for i, c in enumerate(columns) if processed
                      and (p := c.type._cached_result_processor(self.dialect, types[i]))]
        if not processors:
            return [tuple(row) for row in rows]
        out = []
        for row in rows:
            row = list(row)
            for i, process in processors:
                row[i] = process(row[i])
            out.append(tuple(row))
        return out

    def update(self, table, key: str, names: Sequence[str],  # type: ignore[no-untyped-def]
               items: Iterable[tuple[Any, dict[str, Any]]]) -> None:
        """UPDATE table SET names… WHERE key = …, one row per (key value, values) item."""
        sets = ", ".join(f'"{name}" = {self.mark}' for name in names)
        self._run(f'UPDATE {table.name} SET {sets} WHERE "{key}" = {self.mark}', table,
                  [*names, key], ((*(row[n] for n in names), k) for k, row in items))

    def upsert_add(self, table, keys: Sequence[str], names: Sequence[str],  # type: ignore[no-untyped-def]
                   counters: Sequence[str], rows: Iterable[tuple]) -> None:
        """INSERT … ON CONFLICT (keys) DO UPDATE adding the counters (SQLite and PostgreSQL)."""
        marks = ", ".join([self.mark] * len(names))
        adds = ", ".join(f"{c} = {table.name}.{c} + excluded.{c}" for c in counters)
        self._run(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks}) "
                  f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {adds}", table, names, rows)
