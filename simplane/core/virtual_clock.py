"""The database's clock: one "now" for every process on a database, real or virtual.

The `clock` row says whether the database runs on real time or on a virtual time: one that was
`virtual_base` at wall-clock second `real_base` and runs at `speed` simulated seconds per real
second (0 stands still). `simplane serve --clock virtual` starts it; from then on the server,
`simulate`, `events dispatch` and every CLI command on the database read the same time.

Reading is cheap: each process keeps the row and reads it again at most every `refresh`
seconds (0.1 by default), so a clock moved by another process is seen that soon; one moved by
this process is seen at once.

Moving it (`advance_clock`, `set_clock`; what `POST /admin/v1/Clock` and `simplane clock` call)
also runs, in time order, every job that falls due on the way: the clock steps to each moment
a job says it has work (`Worker.next_due`), and the jobs are drained there, so the caller sees
every outcome (a `ready` SIM made `active` three months on, a Proxy session expired, an Event
Streams sink retried until it failed) as soon as the call returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from simplane.core import wakeup
from simplane.core.clock import REAL_CLOCK, Clock, ClockError, Duration, utc
from simplane.core.models import ClockState

if TYPE_CHECKING:
    from simplane.core.db import Database
    from simplane.core.runtime import Runtime

# Steps one move may take (each to the next moment a job has work); past it, the rest of the
# way is taken in one step.
MAX_STEPS = 10_000


@dataclass(frozen=True)
class _State:
    mode: str
    virtual_base: datetime | None
    real_base: float | None
    speed: float
    version: int

    def now(self, wall: float) -> datetime:
        if self.mode != "virtual" or self.virtual_base is None or self.real_base is None:
            return datetime.fromtimestamp(wall, UTC).replace(microsecond=0)
        elapsed = timedelta(seconds=max(0.0, wall - self.real_base) * self.speed)
        return (self.virtual_base + elapsed).replace(microsecond=0)


class DatabaseClock(Clock):
    """The clock kept in a database's `clock` row (see the module). `now()` is real time until
    the database's clock is made virtual; `advance` and `set` move a virtual one (for everyone
    on the database) and raise ClockError on real time."""

    def __init__(self, db: Database, refresh: float = 0.1,
                 wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.refresh_every = refresh
        self._wall = wall
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._state: _State | None = None
        self._read_at = 0.0
        self._writes = 0  # moves made by this process

    # --- reading ---------------------------------------------------------------------------

    def state(self) -> _State:
        state, read_at = self._state, self._read_at
        if state is not None and self._monotonic() - read_at < self.refresh_every:
            return state
        # One thread reads the row; the others go on with what was read (on PostgreSQL a
        # request holding a connection must not wait for the pool for a second one).
        if state is None:
            with self._refreshing:
                return self.refresh()
        if not self._refreshing.acquire(blocking=False):
            return state
        try:
            return self.refresh()
        finally:
            self._refreshing.release()

    def refresh(self) -> _State:
        """Read the row again (another process may have moved the clock, or a restore put
        back an earlier one)."""
        writes = self._writes
        with self.db.read() as db:
            row = db.get(ClockState, 1)
            state = _State("real", None, None, 1.0, 0) if row is None else _state(row)
        return self._keep(state, unless_written_since=writes)

    def _keep(self, state: _State, unless_written_since: int | None = None) -> _State:
        """Keep `state` as read now; a read that began before this process last moved the
        clock is older than what that move kept, and is dropped."""
        with self._lock:
            if unless_written_since is None:
                self._writes += 1
            if unless_written_since in (None, self._writes) or self._state is None:
                self._state = state
                self._read_at = self._monotonic()
            return self._state

    def now(self) -> datetime:
        return self.state().now(self._wall())

    @property
    def mode(self) -> str:  # type: ignore[override]
        return self.state().mode

    @property
    def speed(self) -> float:  # type: ignore[override]
        return self.state().speed

    @property
    def version(self) -> int:
        """Counts the changes of the clock (by any process): a new value means it moved."""
        return self.state().version

    # --- moving ----------------------------------------------------------------------------

    def start_virtual(self, start: datetime | None = None, speed: float | None = None) -> datetime:
        """Run the database on a virtual clock from `start` (default: where a virtual clock
        already is, else now) at `speed` (default: as it was; 1.0 for a new one)."""
        if speed is not None and speed < 0:
            raise ValueError("the speed of a virtual clock is not negative")

        def change(state: _State, now: datetime) -> dict:
            return {"mode": "virtual", "virtual_base": utc(start) if start else now,
                    "speed": speed if speed is not None else (
                        state.speed if state.mode == "virtual" else 1.0)}

        return self._write(change, require_virtual=False)

    def use_real(self) -> datetime:
        """Run the database on real time again."""
        return self._write(lambda _state, _now: {"mode": "real", "virtual_base": None,
                                                 "real_base": None, "speed": 1.0},
                           require_virtual=False)

    def set(self, when: datetime) -> datetime:
        """Move a virtual clock to `when` (it runs on from there at its speed)."""
        return self._write(lambda _state, _now: {"virtual_base": utc(when)})

    def advance(self, delta: timedelta | float | str) -> datetime:
        """Move a virtual clock on by `delta` (a timedelta, seconds, or text such as "90d" or
        "P90D": see `parse_duration`)."""
        step = Duration.of(delta)
        return self._write(lambda _state, now: {"virtual_base": step.after(now)})

    def _write(self, change: Callable[[_State, datetime], dict],
               require_virtual: bool = True) -> datetime:
        with self.db.write() as db:
            row = db.scalar(select(ClockState).where(ClockState.id == 1).with_for_update())
            if row is None:  # the migration made it; restored from elsewhere without it
                row = ClockState(id=1, mode="real", speed=1.0, version=0)
                db.add(row)
                db.flush()
            state = _state(row)
            if require_virtual and state.mode != "virtual":
                raise ClockError(REAL_CLOCK)
            wall = self._wall()
            values = {"real_base": wall, **change(state, state.now(wall)),
                      "version": state.version + 1}
            if values.get("virtual_base") is not None:
                values["virtual_base"] = values["virtual_base"].replace(microsecond=0)
            db.execute(update(ClockState).where(ClockState.id == 1).values(**values))
            wakeup.work_committed(db)  # every process's worker sleeps by the clock
        return self._keep(replace(state, **values)).now(wall)


def _state(row: ClockState) -> _State:
    return _State(row.mode, row.virtual_base, row.real_base, row.speed, row.version)


# --- moving the clock and running what falls due ---------------------------------------------

def advance_clock(runtime: Runtime, delta: Duration | timedelta | float | str) -> datetime:
    """Move the runtime's (virtual) clock on by `delta` (a timedelta, seconds, or text such as
    "90d", "6h", "P90D": see `parse_duration`), running in time order every job that falls due
    on the way; returns the new now. ClockError on real time; ValueError for a duration that is
    negative or not one."""
    step = Duration.of(delta)
    if step.months < 0 or step.time < timedelta(0):
        raise ValueError("a clock advances by a duration that is not negative: set a time to go "
                         "back")
    _virtual(runtime.clock)
    try:
        target = step.after(runtime.clock.now())
    except OverflowError:
        raise ValueError("that is past the last date a clock can show") from None
    return _move(runtime, target)


def set_clock(runtime: Runtime, when: datetime) -> datetime:
    """Move the runtime's (virtual) clock to `when`, running in time order every job that falls
    due on the way (none when it goes back); returns the new now. ClockError on real time."""
    _virtual(runtime.clock)
    return _move(runtime, utc(when))


def _virtual(clock: Clock) -> None:
    if clock.mode != "virtual":
        raise ClockError(REAL_CLOCK)


def _move(runtime: Runtime, target: datetime) -> datetime:
    clock, worker = runtime.clock, runtime.worker
    target = target.replace(microsecond=0)
    if target > clock.now():
        worker.drain()  # what is due already goes first
        for _ in range(MAX_STEPS):
            due = worker.next_due(clock.now())
            if due is None or due >= target:
                break
            clock.set(_whole_second_at_or_after(due))  # clocks show whole seconds
            worker.drain()
        target = max(target, clock.now())  # a running clock may have passed it meanwhile
    now = clock.set(target)
    worker.drain()
    worker.wake()
    return now


def _whole_second_at_or_after(when: datetime) -> datetime:
    return when if not when.microsecond else when.replace(microsecond=0) + timedelta(seconds=1)
