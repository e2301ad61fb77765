"""What ingest last wrote, kept between batches: open data sessions and SIM states; and what it
last read of SIMs: their facts (account, status, rate plan or Fleet).

Ingest is the only writer of both tables, so the rows it committed are still the rows in the
database, unless another process ingested meanwhile. To know, every batch bumps a generation
counter in the database (`network_ingest`, one row) in its own transaction; the cache is used
only when the generation it holds is the one before the batch's, and is emptied otherwise. The
bump also queues ingest batches of every process one behind the other (a row lock on PostgreSQL,
the write lock on SQLite), so two batches never both read a session and write it back.

A batch takes the rows it needs out of the cache (`checkout`) and hands them back once its
transaction has committed (`checkin`); if it rolls back they are simply gone, and read from the
database next time. Only open sessions already stored (with a primary key) are kept; at most
`LIMIT` sessions and `LIMIT` states, the least recently used going first.

SIM facts are kept under another counter, the facts version (`network_facts`), which triggers
bump whenever a SIM's facts may have changed, in any process (migration 0011). A batch reads the
version before any SIM; facts kept under another version are dropped, and the SIMs not kept are
read and kept (`known_sims`, `keep_sims`), at most `SIMS_LIMIT` of them. Only SIMs found are
kept: an unknown IMSI is looked up again each time, so a SIM registered meanwhile is found.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import Any

from sqlalchemy import event, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from simplane.network.models import FactsVersion, IngestGeneration

LIMIT = 50_000
SIMS_LIMIT = 100_000
Row = dict[str, Any]


class IngestCache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.generation: int | None = None
        self.sessions: dict[tuple[str, str], Row] = {}
        self.states: dict[str, Row] = {}
        self.facts_version: int | None = None
        self.sims: dict[str, Any] = {}  # IMSI → what ingest made of the SIM's facts

    def checkout(self, generation: int, session_keys: Iterable[tuple[str, str]],
                 sim_sids: Iterable[str]) -> tuple[dict[tuple[str, str], Row], dict[str, Row]]:
        """The cached rows of these keys, taken out of the cache: none unless the cache holds
        the generation before this one."""
        with self.lock:
            if self.generation != generation - 1:
                self.sessions.clear()
                self.states.clear()
            self.generation = None  # a batch is under way
            return (_take(self.sessions, session_keys), _take(self.states, sim_sids))

    def checkin(self, generation: int, sessions: Iterable[tuple[tuple[str, str], Row]],
                states: Iterable[tuple[str, Row]]) -> None:
        """After the batch of this generation committed: keep its rows (unless a later batch
        committed first: then the cache starts afresh)."""
        with self.lock:
            if self.generation not in (None, generation - 1):
                self.drop_all()
                return
            self.generation = generation
            _put(self.sessions, sessions)
            _put(self.states, states)

    def known_sims(self, version: int, imsis: Iterable[str]) -> dict[str, Any]:
        """The facts kept of these IMSIs, if kept under this facts version."""
        with self.lock:
            if self.facts_version != version:
                self.sims.clear()
                self.facts_version = version
            kept = self.sims
            return {imsi: facts for imsi in imsis if (facts := kept.get(imsi)) is not None}

    def keep_sims(self, version: int, found: dict[str, Any]) -> None:
        """Keep facts read after reading this facts version."""
        with self.lock:
            if self.facts_version == version:
                _put(self.sims, found.items(), SIMS_LIMIT)

    def drop_all(self) -> None:
        self.generation = None
        self.sessions.clear()
        self.states.clear()


def _take(rows: dict, keys: Iterable) -> dict:
    found = {}
    for key in keys:
        row = rows.pop(key, None)
        if row is not None:
            found[key] = row
    return found


def _put(rows: dict, items: Iterable[tuple[Any, Any]], limit: int = LIMIT) -> None:
    rows.update(items)
    for _ in range(len(rows) - limit):
        del rows[next(iter(rows))]  # dicts keep insertion order: the oldest first


_caches: weakref.WeakKeyDictionary[Engine | Connection, IngestCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_for(db: Session) -> IngestCache:
    engine = db.get_bind()
    with _caches_lock:
        cache = _caches.get(engine)
        if cache is None:
            cache = _caches[engine] = IngestCache()
        return cache


def next_generation(db: Session) -> int:
    """Bump the database's ingest generation in this transaction; returns the new one."""
    return int(db.execute(update(IngestGeneration).values(
        generation=IngestGeneration.generation + 1).returning(IngestGeneration.generation))
        .scalar_one())


FACTS_VERSION = f"SELECT version FROM {FactsVersion.__tablename__}"


def facts_version(db: Session) -> int:
    """The facts version, read in the session's transaction (the driver's statement: it is read
    for every batch of ingest and of RADIUS authorisation)."""
    return int(db.connection().exec_driver_sql(FACTS_VERSION).scalar_one())


def after_commit(db: Session, cache: IngestCache, generation: int,
                 sessions: Iterable[tuple[tuple[str, str], Row]],
                 states: Iterable[tuple[str, Row]]) -> None:
    """Check these rows in once the session's transaction commits; empty the cache if it rolls
    back instead."""
    db.info.setdefault(_PENDING, []).append((cache, generation, sessions, states))


_PENDING = "simplane.network.cache"


@event.listens_for(Session, "after_commit")
def _committed(db: Session) -> None:
    for cache, generation, sessions, states in db.info.pop(_PENDING, ()):
        cache.checkin(generation, sessions, states)


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(db: Session, _transaction: Any) -> None:
    for cache, *_rest in db.info.pop(_PENDING, ()):
        with cache.lock:
            cache.drop_all()
