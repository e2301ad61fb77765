"""Waking the background workers when work is committed, instead of polling for it.

- **In this process**: `work_committed(db)`, called in a transaction that creates work for a
  job (a callback, an outbox event, a command to deliver, a Disconnect-Request), wakes every
  worker of the process once that transaction commits (nothing if it rolls back).
- **Other processes, on PostgreSQL**: the same call adds `NOTIFY simplane_work` to the
  transaction (PostgreSQL delivers it at commit, and only then), and every process keeps one
  connection that LISTENs (`Listener`) and wakes its worker when another process's
  notification arrives. A process's own notifications are told apart by their payload and
  ignored, its workers already woken.
- **Other processes, on SQLite**: nothing carries a signal between them; the worker's idle
  sleep is capped (`Worker.cap`), a long fallback poll. Every process runs the jobs, so work
  is found at once by the process that created it.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from simplane.core import leases

if TYPE_CHECKING:
    from simplane.core.db import Database

log = logging.getLogger("simplane.wakeup")

CHANNEL = "simplane_work"
_FLAG = "simplane.wake"

# Everything in this process to wake on committed work (the workers' `wake`).
_wakers: weakref.WeakSet[Any] = weakref.WeakSet()


def register(waker: Any) -> None:
    """`waker.wake()` is called when work is committed in this process (or, through the
    listener, in another one)."""
    _wakers.add(waker)


def wake_local() -> None:
    for waker in list(_wakers):
        waker.wake()


def work_committed(db: Session) -> None:
    """Wake the workers once this session's transaction commits: this process's at once,
    other processes' on PostgreSQL by NOTIFY. Once per transaction, however often called."""
    if db.info.get(_FLAG):
        return
    db.info[_FLAG] = True

    def committed(_session: Session) -> None:
        db.info.pop(_FLAG, None)
        wake_local()

    def rolled_back(_session: Session, _previous: Any = None) -> None:
        db.info.pop(_FLAG, None)

    event.listen(db, "after_commit", committed, once=True)
    event.listen(db, "after_rollback", rolled_back, once=True)
    bind = db.get_bind()
    if bind.dialect.name == "postgresql":
        db.execute(text("SELECT pg_notify(:channel, :me)"),
                   {"channel": CHANNEL, "me": leases.owner()})


class Listener:
    """A thread that LISTENs on PostgreSQL and calls `wake` on another process's work. It
    waits on the connection's socket (no polling; it looks at its stop flag every `timeout`
    seconds) and reconnects after an error, waking once, since work may have come meanwhile."""

    def __init__(self, db: Database, wake: Callable[[], None], timeout: float = 30.0) -> None:
        self.dsn = leases.pg_dsn(db)
        self.wake, self.timeout = wake, timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="simplane-listen", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # the thread is a daemon: it ends by its next timeout, or with us

    def _run(self) -> None:
        import psycopg

        me = leases.owner()
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5,
                                     application_name="simplane listen") as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    self.wake()  # what was committed before we listened
                    while not self._stop.is_set():
                        woken = False
                        for note in conn.notifies(timeout=self.timeout):
                            if note.payload != me:
                                woken = True
                            break
                        if woken:
                            self.wake()
            except psycopg.Error:
                self.listening.clear()
                log.warning("lost the LISTEN connection; reconnecting")
                self._stop.wait(2.0)
