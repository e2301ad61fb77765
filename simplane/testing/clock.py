"""`simplane.clock`: the server's "now", which moves only when a test moves it. Moving it runs,
before the call returns, the background work that fell due (lifecycle timers, retries,
callbacks), so a test sees the outcome at once."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

from simplane.core.clock import ManualClock, utc

_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def duration(value: timedelta | float | str) -> timedelta:
    """A timedelta, seconds, or text such as "90d", "6h", "15m", "30s", "1h30m"."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.replace(" ", "").lower()
        parts = _PART.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            return sum((timedelta(**{_UNITS[u]: float(n)}) for n, u in parts), timedelta())
    raise ValueError(f"not a duration: {value!r} (a timedelta, seconds, or e.g. '90d', '6h', "
                     "'15m', '1h30m')")


class TestClock:
    """What a test sees of the server's clock."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(self, clock: ManualClock, run_due: Callable[[], None]) -> None:
        self._clock = clock
        self._run_due = run_due

    def now(self) -> datetime:
        """The server's now (aware, UTC, whole seconds)."""
        return self._clock.now()

    def advance(self, by: timedelta | float | str) -> datetime:
        """Move now forward and run what fell due; returns the new now."""
        delta = duration(by)
        if delta < timedelta(0):
            raise ValueError("the clock only moves forward (use set() to go elsewhere)")
        now = self._clock.advance(delta)
        self._run_due()
        return now

    def set(self, when: datetime) -> datetime:
        """Move now to `when` (naive values are UTC) and run what fell due."""
        self._clock.set(utc(when))
        self._run_due()
        return self._clock.now()
