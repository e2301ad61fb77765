"""`simplane.clock`: the server's "now", a virtual clock kept in its database that moves only
when a test moves it. Moving it runs, in time order, every job that falls due on the way
(lifecycle timers, retries, callbacks, expiries) before the call returns, as
`POST /admin/v1/Clock` does, so a test sees the outcome at once."""

from __future__ import annotations

from datetime import datetime, timedelta

from simplane.core.clock import Duration
from simplane.core.runtime import Runtime
from simplane.core.virtual_clock import advance_clock, set_clock


class TestClock:
    """What a test sees of the server's clock."""

    __test__ = False  # not a test class, whatever pytest makes of its name

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def now(self) -> datetime:
        """The server's now (aware, UTC, whole seconds)."""
        return self._runtime.clock.now()

    def advance(self, by: Duration | timedelta | float | str) -> datetime:
        """Move now forward by a timedelta, seconds, or text ("90d", "6h", "15m", "P3M"),
        running what falls due on the way; returns the new now."""
        return advance_clock(self._runtime, by)

    def set(self, when: datetime) -> datetime:
        """Move now to `when` (naive values are UTC), running what falls due on the way (none
        when it goes back); returns the new now."""
        return set_clock(self._runtime, when)
