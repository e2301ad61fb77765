"""Billing periods: a `ready` period of up to 3 months (cut short by activation), then monthly
`active` periods from the day of activation. Usage toward a Fleet's data_limit counts from the
start of the current period (`current_period`)."""

from __future__ import annotations

from datetime import datetime

from simplane.core.clock import add_months

READY_MONTHS = 3  # the longest a SIM stays ready: then it becomes active


def periods(date_ready: datetime | None, date_activated: datetime | None,
            now: datetime) -> list[tuple[str, datetime, datetime]]:
    """(period_type, start, end) of every period so far, the one under way last."""
    found = []
    if date_ready is not None:
        end = add_months(date_ready, READY_MONTHS)
        if date_activated is not None:
            end = min(end, date_activated)
        found.append(("ready", date_ready, end))
    if date_activated is not None:
        start, n = date_activated, 0
        while start <= now:
            end = add_months(date_activated, n + 1)
            found.append(("active", start, end))
            start, n = end, n + 1
    return found


def current_period(date_ready: datetime | None, date_activated: datetime | None,
                   now: datetime) -> tuple[str, datetime, datetime] | None:
    """The period under way, or None for a SIM that was never ready or active."""
    found = periods(date_ready, date_activated, now)
    return found[-1] if found else None
