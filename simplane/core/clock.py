"""The injectable clock. Everything that asks for "now" asks a Clock."""

from __future__ import annotations

import calendar
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


def utc(dt: datetime) -> datetime:
    """An aware UTC datetime (naive values, as SQLite returns them, are taken as UTC)."""
    zone = dt.tzinfo
    if zone is UTC:
        return dt
    if zone is None:
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
    if dt.tzinfo is not UTC:
        dt = utc(dt)
    # isoformat pads years before 1000 to four digits (strftime's %Y does not); then "+00:00"
    return dt.isoformat("T", "seconds")[:19] + "Z"


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


def months_after_bound(now: datetime, months: int) -> datetime:
    """Every moment that `months` months have NOT yet passed since by `now` is after this (no
    month is longer than 31 days): where `months_due` need look."""
    return now - timedelta(days=31 * months)


def months_due(anchors: Iterable[datetime], months: int, now: datetime) -> datetime | None:
    """The first moment after `now` at which `months` months (as `add_months` counts them) have
    passed since one of `anchors`, given in ascending order."""
    for anchor in anchors:
        due = add_months(utc(anchor), months)
        if due > now:
            return due
    return None


class ClockError(Exception):
    """The clock cannot be moved: it is the real one."""


REAL_CLOCK = ("The clock is real time and cannot be moved: start simplane on a virtual clock "
              "with `simplane serve --clock virtual [--clock-start TIME] [--clock-speed X]`")


class Clock:
    """Real time, in whole seconds UTC."""

    mode = "real"
    speed = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)

    def set(self, when: datetime) -> datetime:
        raise ClockError(REAL_CLOCK)

    def advance(self, delta: timedelta | float | str) -> datetime:
        raise ClockError(REAL_CLOCK)


class ManualClock(Clock):
    """A clock that moves only when told to: for tests and the simulator's virtual time."""

    mode = "virtual"
    speed = 0.0

    def __init__(self, start: datetime | None = None) -> None:
        self._now = utc(start or datetime(2026, 1, 1, tzinfo=UTC)).replace(microsecond=0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> datetime:
        with self._lock:
            self._now = utc(when).replace(microsecond=0)
            return self._now

    def advance(self, delta: timedelta | float | str) -> datetime:
        step = Duration.of(delta)
        with self._lock:
            self._now = step.after(self._now).replace(microsecond=0)
            return self._now


@dataclass(frozen=True)
class Duration:
    """A step of time: calendar months (as `add_months` counts them), then a fixed time."""

    months: int = 0
    time: timedelta = timedelta(0)

    def after(self, when: datetime) -> datetime:
        return add_months(when, self.months) + self.time

    @classmethod
    def of(cls, value: Duration | timedelta | float | str) -> Duration:
        """A Duration from a timedelta, a number of seconds, or text (see `parse_duration`)."""
        if isinstance(value, Duration):
            return value
        if isinstance(value, timedelta):
            return cls(time=value)
        if isinstance(value, str):
            return parse_duration(value)
        return cls(time=timedelta(seconds=value))


_SHORT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([wdhms]?)\s*$", re.IGNORECASE)
_ISO = re.compile(r"^P(?!$)(?:([0-9]+)Y)?(?:([0-9]+)M)?(?:([0-9]+)W)?(?:([0-9]+)D)?"
                  r"(?:T(?=[0-9])(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+(?:[.,][0-9]+)?)S)?)?$",
                  re.IGNORECASE)
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> Duration:
    """A duration as seconds (`3600`), a number and a unit (`90d`, `6h`, `15m`, `30s`, `2w`), or
    ISO 8601 (`P90D`, `PT6H`, `P3M`, `P1DT12H`; years and months are calendar ones).
    ValueError when it is none of these."""
    short = _SHORT.match(text)
    iso_match = _ISO.match(text.strip())
    try:
        if short:
            return Duration(time=timedelta(seconds=float(short[1]) * _UNIT[short[2].lower()]))
        if iso_match:
            years, months, weeks, days, hours, minutes, seconds = (
                float(g.replace(",", ".")) if g else 0 for g in iso_match.groups())
            return Duration(int(years) * 12 + int(months), timedelta(
                weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds))
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None
    raise ValueError(f"{text!r} is not a duration: give seconds, a number with d, h, m or s "
                     "(e.g. 90d, 6h, 15m), or ISO 8601 (e.g. P90D, PT6H)")
