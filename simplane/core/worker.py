"""The background worker: runs the jobs registered on it (each product's delivery, timers,
callbacks) in one thread.

A job is a function of the runtime returning True when it found work; the worker loops while any
job finds work and otherwise sleeps until woken or until the first moment a job has work, at
most `cap`. It is woken by work committed in this process, and on PostgreSQL by work another
process commits (`core/wakeup.py`: NOTIFY and a LISTEN connection), so there `cap` is long
(60 s); on SQLite nothing signals across processes and `cap` (15 s) is how soon work only
another process committed is found. A job whose work waits
for a moment (a timer, a retry) has a `NextDue` beside it: the first moment after a given now
that it will have work, so that a virtual clock can be moved on in steps that miss none. Jobs
are written to be safe when run concurrently (by another process on the same database, or by a test calling
`run_once`), so every state change is a conditional UPDATE.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from simplane.core import wakeup

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

log = logging.getLogger("simplane.worker")

Job = Callable[["Runtime"], bool]
NextDue = Callable[["Runtime", datetime], "datetime | None"]


class Worker:
    def __init__(self, runtime: Runtime, jobs: Iterable[Job], tick: float = 0.25,
                 next_due: Iterable[NextDue] = (), cap: float = 5.0) -> None:
        self.runtime = runtime
        self.jobs = list(jobs)
        self.due = list(next_due)
        self.tick, self.cap = tick, cap
        self.gap = 0.05
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._run_lock = threading.Lock()
        wakeup.register(self)

    def add(self, jobs: Iterable[Job], next_due: Iterable[NextDue] = ()) -> None:
        """Register jobs to run on every pass (each product registers its own), and the
        functions that say when those that wait for a moment have work next; none is added
        twice."""
        with self._run_lock:
            self.jobs.extend(job for job in jobs if job not in self.jobs)
            self.due.extend(due for due in next_due if due not in self.due)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="simplane-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)

    def wake(self) -> None:
        self._wake.set()

    def wake_after_commit(self, db: Session) -> None:
        """Wake the workers (this one, every one of this process, and on PostgreSQL those of
        other processes) when this session's transaction commits."""
        wakeup.work_committed(db)

    def run_once(self) -> bool:
        """Run every job once; True when any found work."""
        busy = False
        with self._run_lock:
            for job in self.jobs:
                try:
                    busy = job(self.runtime) or busy
                except Exception:  # a failing job must not stop the others
                    log.exception("job failed", extra={"fields": {"job": job.__name__}})
        return busy

    def drain(self, rounds: int = 100) -> None:
        """Run jobs until none finds work (tests use this instead of sleeping)."""
        for _ in range(rounds):
            if not self.run_once():
                return

    def next_due(self, now: datetime) -> datetime | None:
        """The first moment after `now` at which a job will have work (None: none waits)."""
        found = []
        for due in self.due:
            try:
                when = due(self.runtime, now)
            except Exception:
                log.exception("next due failed", extra={"fields": {"job": due.__name__}})
                continue
            if when is not None and when > now:
                found.append(when)
        return min(found, default=None)

    def idle_wait(self) -> float:
        """How long an idle worker sleeps: until the first moment a job has work, at least
        `tick` and at most `cap` (work another process commits is found within `cap`; work
        of this one wakes the worker at once)."""
        clock = self.runtime.clock
        now, speed = clock.now(), clock.speed
        due = self.next_due(now)
        if due is None or speed <= 0:
            return self.cap
        # now is in whole seconds: a second early rather than up to one late
        return min(self.cap, max(self.tick, ((due - now).total_seconds() - 1) / speed))

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            busy = self.run_once()
            if not busy:
                self._wake.wait(self.idle_wait())
                self._wake.clear()
                # Work committed many times a second (ingest publishing events) wakes the
                # worker at most every `gap` seconds: a pass reads every job's table.
                rest = self.gap - (time.monotonic() - started)
                if rest > 0 and not self._stop.is_set():
                    time.sleep(rest)
