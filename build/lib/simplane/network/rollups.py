"""Hourly usage rollups of Wireless SIMs and their accounts: bytes up and down and commands from
and to the SIM, per roaming class and serving country. UsageRecords read only these."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy.orm import Session

from simplane.core.bulk import BulkSql
from simplane.core.clock import add_months
from simplane.core.errors import bad_request
from simplane.network.models import AccountUsageHour, SimUsageHour

ROLLUP = ("upload", "download", "commands_from_sim", "commands_to_sim")
MAX_WINDOW = timedelta(days=548)  # 18 months: Twilio keeps usage that long (simplane prunes none)


def add_usage(db: Session, usage: dict[tuple, list[int]], sql: BulkSql | None = None) -> None:
    """Add to the hourly rollups of SIMs and their accounts: `usage` maps (sim_sid, account_sid,
    hour, roaming, country) to the growth of the four `ROLLUP` counters."""
    if not usage:
        return
    sql = sql or BulkSql(db)
    per_account: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for (_sim, account_sid, hour, roaming, country), growth in usage.items():
        total = per_account[(account_sid, hour, roaming, country)]
        for i, value in enumerate(growth):
            total[i] += value
    sql.upsert_add(SimUsageHour.__table__, ("sim_sid", "hour", "roaming", "country"),
                   ("sim_sid", "account_sid", "hour", "roaming", "country", *ROLLUP), ROLLUP,
                   ((*key, *growth) for key, growth in usage.items()))
    sql.upsert_add(AccountUsageHour.__table__, ("account_sid", "hour", "roaming", "country"),
                   ("account_sid", "hour", "roaming", "country", *ROLLUP), ROLLUP,
                   ((*key, *growth) for key, growth in per_account.items()))


@lru_cache(maxsize=4096)
def hour_of(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


def usage_window(start: datetime | None, end: datetime, names: tuple[str, str]
                 ) -> tuple[datetime, datetime]:
    """The window of a UsageRecords list: `start` defaults to one month before `end`, and the
    two (named as the product names its parameters) must be at most 18 months apart."""
    start_name, end_name = names
    if start is None:
        try:
            start = add_months(end, -1)
        except ValueError:  # no month before it
            raise bad_request(f"Invalid {end_name}: too early for the default {start_name}, a "
                              "month before it") from None
    if start >= end:
        raise bad_request(f"Invalid {start_name}: must be before {end_name}")
    if end - start > MAX_WINDOW:
        raise bad_request(f"Invalid {start_name}: {start_name} and {end_name} must be at most "
                          "18 months apart")
    return start, end


def spans(start: datetime, end: datetime, step: timedelta | None) -> list[tuple[datetime, datetime]]:
    """The usage records' periods of [start, end): cut at whole hours, or at midnights for a
    step of a day, the first and last cut short to the window; the window whole without a
    step. No bound goes past `end`, so none overflows at the end of the calendar."""
    if step is None:
        return [(start, end)]
    cursor = hour_of(start)
    if step >= timedelta(days=1):
        cursor = cursor.replace(hour=0)
    found = []
    while cursor < end:
        bound = end if end - cursor <= step else cursor + step
        found.append((max(cursor, start), bound))
        cursor = bound
    return found
