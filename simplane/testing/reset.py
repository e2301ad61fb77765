"""Back to a clean database in one transaction: every row deleted, children first, but the
accounts kept as they were when the session began, the counters migrations create, and the
clock, set back to where the session started it.

Deleting is the fast way for the few rows a test makes (SQLite empties a table without triggers
at once; PostgreSQL's TRUNCATE costs more than DELETE on small tables). What the process keeps
of the database (ingest's cache of sessions, SIM states and SIM facts; verified credentials; the
clock it read) is renewed with it."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy import MetaData, Table, insert, select, update

from simplane.core.models import ClockState
from simplane.core.runtime import Runtime
from simplane.kore import service as kore_service
from simplane.kore import tokens as kore_tokens
from simplane.network import cache

# Rows that migrations create: counters that code only ever moves forward (caches compare
# them, so they are never deleted or moved back) and the clock (set, not deleted).
KEPT_TABLES = frozenset({"alembic_version", "network_ingest", "network_facts", "clock",
                         "kore_auth_state"})


class Reset:
    def __init__(self, runtime: Runtime, keep_accounts: list[str]) -> None:
        self.runtime = runtime
        metadata = MetaData()
        metadata.reflect(runtime.db.engine)
        # Children before the tables they refer to.
        self.tables: list[Table] = [t for t in reversed(metadata.sorted_tables)
                                    if t.name not in KEPT_TABLES]
        self.accounts = metadata.tables["accounts"]
        with runtime.db.read() as db:
            self.kept: list[dict[str, Any]] = [dict(row._mapping) for row in db.execute(
                select(self.accounts).where(self.accounts.c.sid.in_(keep_accounts)))]

    def __call__(self, clock_at: datetime | None = None) -> None:
        """Delete; with `clock_at`, the (virtual, standing) clock shows it afterwards."""
        with self.runtime.db.write() as db:
            for table in self.tables:
                db.execute(table.delete())
            if self.kept:
                db.execute(insert(self.accounts), self.kept)
            if clock_at is not None:
                db.execute(update(ClockState).where(ClockState.id == 1).values(
                    mode="virtual", virtual_base=clock_at, real_base=time.time(), speed=0.0,
                    version=ClockState.version + 1))
            kept = cache.cache_for(db)
            with kept.lock:
                kept.drop_all()
                kept.sims.clear()
                kept.facts_version = None
            # KORE's API clients are gone: their tokens too, in every process.
            kore_service.bump_generation(db)
        self.runtime.authenticator.forget()
        kore_tokens.forget_all()
        refresh = getattr(self.runtime.clock, "refresh", None)
        if refresh is not None:
            refresh()


def empty(runtime: Runtime) -> None:
    """Delete every row but the counters and the clock (a database the session takes
    over)."""
    Reset(runtime, [])()
