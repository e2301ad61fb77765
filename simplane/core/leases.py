"""Roles that run once per database: a process holds a lease on a named role (the SMPP bind,
the simulator) and another process takes it over when the holder dies.

- **PostgreSQL**: a session advisory lock (`pg_try_advisory_lock`) held on a connection of the
  lease's own, outside the pool. The server releases it the moment that connection ends, so a
  process that dies (even by SIGKILL) gives its roles up at once; a standby takes over at its
  next try (`retry`, 2 s). The holder checks its connection every `check_every` seconds and
  stops the role if it is gone (the server may have dropped it, and the lock with it).
- **SQLite**: a row of `role_leases` (name, owner, until), renewed by the holder every third
  of `ttl` (15 s). A standby takes the role once `until` has passed, or at once when the owner
  is a process of this host that no longer exists (the owner is `host/pid/nonce`).

`Role` runs a function while the lease is held: `start()` returns the function that stops
what it started; a standby waits and tries again every `retry` seconds. Nothing here polls
when no role is asked for.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

from sqlalchemy import update

from simplane.core.models import RoleLease

if TYPE_CHECKING:
    from simplane.core.db import Database

log = logging.getLogger("simplane.leases")

HOST = socket.gethostname()


def owner() -> str:
    """This process's name on leases: host/pid/nonce (the nonce tells a reused pid apart)."""
    global _OWNER
    if _OWNER is None or _OWNER[1] != os.getpid():
        _OWNER = (f"{HOST}/{os.getpid()}/{secrets.token_hex(4)}", os.getpid())
    return _OWNER[0]


_OWNER: tuple[str, int] | None = None


def dead_here(name: str) -> bool:
    """Whether `name` (host/pid/nonce) is a process of this host that no longer exists."""
    host, _, rest = name.partition("/")
    pid = rest.partition("/")[0]
    if host != HOST or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def advisory_key(name: str) -> int:
    """The 64-bit advisory lock key of a role's name."""
    digest = hashlib.blake2b(f"simplane:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def pg_dsn(db: Database) -> str:
    """A libpq connection string for the database (for connections outside the pool)."""
    return db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class Lease:
    """A lease on the role `name` for this process: `acquire` tries once, `check` says (and
    on SQLite renews) whether it is still held, `release` gives it up."""

    def __init__(self, db: Database, name: str, ttl: float = 15.0, me: str | None = None
                 ) -> None:
        self.db, self.name, self.ttl = db, name, ttl
        self.me = me or owner()  # SQLite's owner name (tests give two in one process)
        self._conn: Any = None  # PostgreSQL: the connection holding the advisory lock
        self.held = False

    @property
    def holder(self) -> str | None:
        """Who holds the role (SQLite: the owner's name; PostgreSQL: the holder's pid on the
        server), or None when nobody does."""
        if self.db.is_sqlite:
            with self.db.read() as db:
                row = db.get(RoleLease, self.name)
                return row.owner if row is not None and row.until >= time.time() else None
        import psycopg

        with psycopg.connect(pg_dsn(self.db), autocommit=True, connect_timeout=5) as conn:
            found = conn.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                "objsubid = 1 AND (classid::bigint << 32) | objid::bigint = %s",
                (advisory_key(self.name),)).fetchone()
            return None if found is None else f"pg/{found[0]}"

    def acquire(self) -> bool:
        self.held = self._acquire_pg() if not self.db.is_sqlite else self._acquire_sqlite()
        return self.held

    def check(self) -> bool:
        if not self.held:
            return False
        self.held = self._check_pg() if not self.db.is_sqlite else self._renew_sqlite()
        return self.held

    def release(self) -> None:
        was, self.held = self.held, False
        if self.db.is_sqlite:
            if was:
                with self.db.write() as db:
                    db.query(RoleLease).filter(RoleLease.name == self.name,
                                               RoleLease.owner == self.me).delete()
        else:
            if was and self._conn is not None:
                import psycopg

                with contextlib.suppress(psycopg.Error):  # at once, not when the session ends
                    self._conn.execute("SELECT pg_advisory_unlock(%s)",
                                       (advisory_key(self.name),))
            self._close()

    # --- PostgreSQL -----------------------------------------------------------------------

    def _acquire_pg(self) -> bool:
        import psycopg

        try:
            if self._conn is None or self._conn.closed:
                # keepalives: a holder cut off from the server notices within a minute
                self._conn = psycopg.connect(
                    pg_dsn(self.db), autocommit=True, connect_timeout=5,
                    application_name=f"simplane lease {self.name}"[:63], keepalives=1,
                    keepalives_idle=10, keepalives_interval=5, keepalives_count=3)
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)",
                                     (advisory_key(self.name),)).fetchone()
            return bool(row and row[0])
        except psycopg.Error:
            log.warning("lease %s: database unavailable", self.name)
            self._close()
            return False

    def _check_pg(self) -> bool:
        import psycopg

        try:
            self._conn.execute("SELECT 1")
            return True
        except (psycopg.Error, AttributeError):
            self._close()
            return False

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError, ImportError, RuntimeError):
                conn.close()  # the server releases the advisory lock with the session

    # --- SQLite ---------------------------------------------------------------------------

    def _acquire_sqlite(self) -> bool:
        me, wall = self.me, time.time()
        with self.db.write() as db:
            row = db.get(RoleLease, self.name)
            if row is None:
                db.add(RoleLease(name=self.name, owner=me, until=wall + self.ttl))
                return True
            if row.owner != me and row.until >= wall and not dead_here(row.owner):
                return False
            row.owner, row.until = me, wall + self.ttl
            return True

    def _renew_sqlite(self) -> bool:
        with self.db.write() as db:
            result = db.execute(update(RoleLease).where(
                RoleLease.name == self.name, RoleLease.owner == self.me)
                .values(until=time.time() + self.ttl))
            return bool(result.rowcount)  # type: ignore[attr-defined]


class Role:
    """Runs `start` while this process holds the lease on `name` (once per database), from a
    thread of its own: `start()` returns the function that stops what it started. A process that
    does not get the lease is a standby: it tries again every `retry` seconds and takes the role
    over when its holder dies. A holder that loses its lease stops the role and becomes a
    standby."""

    def __init__(self, db: Database, name: str, start: Callable[[], Callable[[], None]],
                 retry: float = 2.0, ttl: float = 15.0, check_every: float = 10.0,
                 me: str | None = None) -> None:
        self.lease = Lease(db, name, ttl, me)
        self.name, self.start_role, self.retry = name, start, retry
        self.check_every = min(check_every, ttl / 3) if db.is_sqlite else check_every
        self.held = threading.Event()
        self.standby = threading.Event()  # set once the lease was found held by another
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop_role: Callable[[], None] | None = None

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=f"role-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self.lease.held:
                    try:
                        got = self.lease.acquire()
                    except Exception:
                        log.exception("lease %s: acquire failed", self.name)
                        got = False
                    if got:
                        log.warning("took the role %s", self.name)
                        try:
                            self._stop_role = self.start_role()
                        except Exception:
                            log.exception("role %s failed to start", self.name)
                            self.lease.release()
                            self._stop.wait(self.retry)
                            continue
                        self.held.set()
                    else:
                        if not self.standby.is_set():
                            log.warning("standby for the role %s: another process holds it",
                                        self.name)
                            self.standby.set()
                        self._stop.wait(self.retry)
                    continue
                if self._stop.wait(self.check_every):
                    break
                try:
                    still = self.lease.check()
                except Exception:
                    log.exception("lease %s: check failed", self.name)
                    still = False
                if not still:
                    log.warning("lost the role %s", self.name)
                    self._end_role()
        finally:
            self._end_role()
            try:
                self.lease.release()
            except Exception:
                log.exception("lease %s: release failed", self.name)

    def _end_role(self) -> None:
        self.held.clear()
        stop, self._stop_role = self._stop_role, None
        if stop is not None:
            try:
                stop()
            except Exception:
                log.exception("role %s failed to stop", self.name)


def holder(db: Database, name: str) -> str | None:
    """Who holds the role `name` now (None: nobody)."""
    return Lease(db, name).holder

