"""The injectable clock. Everything that asks for "now" asks a Clock."""

from __future__ import annotations

import calendar
import threading
from datetime import UTC, datetime, timedelta


def utc(dt: datetime) -> datetime:
    """An aware UTC datetime (naive values, as SQLite returns them, are taken as UTC)."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def from_driver(value: datetime | str | None) -> datetime | None:
    """A timestamp as a database driver returns it without SQLAlchemy's types (text on
    SQLite), aware and in UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return None if value is None else utc(value)


def iso(dt: datetime | None) -> str | None:
    """Twilio's date format: ISO 8601 UTC, whole seconds, a literal Z."""
    if dt is None:
        return None
    dt = utc(dt)  # (strftime's %Y does not pad years before 1000)
    return (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}"
            f"T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}Z")


def add_months(when: datetime, months: int) -> datetime:
    """The same day `months` later (or earlier), clamped to the end of a shorter month."""
    month = when.month - 1 + months
    year, month = when.year + month // 12, month % 12 + 1
    return when.replace(year=year, month=month,
                        day=min(when.day, calendar.monthrange(year, month)[1]))


def month_started(anchor: datetime, when: datetime) -> datetime:
    """The start of the month-long period, counted from `anchor` (its day and time each month,
    as `add_months` gives them), that `when` falls in; `when` is not before `anchor`."""
    months = (when.year - anchor.year) * 12 + when.month - anchor.month
    start = add_months(anchor, months)
    return start if start <= when else add_months(anchor, months - 1)


def months_passed(since: datetime, months: int, now: datetime) -> bool:
    """Whether `months` months (to the same day, as `add_months` counts them) have passed since
    `since` by `now`. To find such moments in SQL, look at or before `months_bound` first."""
    return add_months(utc(since), months) <= now


def months_bound(now: datetime, months: int) -> datetime:
    """Every moment that `months` months have passed since by `now` is at or before this
    (no month is shorter than 28 days)."""
    return now - timedelta(days=28 * months)


class Clock:
    """Real time, in whole seconds UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)


class ManualClock(Clock):
    """A clock that moves only when told to: for tests and the simulator's virtual time."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = utc(start or datetime(2026, 1, 1, tzinfo=UTC)).replace(microsecond=0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = utc(when).replace(microsecond=0)

    def advance(self, delta: timedelta | float) -> datetime:
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        with self._lock:
            self._now += delta
            return self._now
