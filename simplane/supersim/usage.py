"""Super SIM usage: hourly rollups per SIM and network, and the UsageRecords read from them.

Ingest writes the rows it has merged with `upsert(db, tuples)`; `add_usage(db, rows)` merges any
rows first, one per SIM, hour and network:

    add_usage(db, [{"account_sid": "AC…", "sim_sid": "HS…", "fleet_sid": "HF…" or None,
                    "network_sid": "HW…", "iso_country": "US", "hour": datetime (any minute),
                    "data_upload": 1200, "data_download": 5400}])

Rows for the same SIM, hour and network add up (one INSERT … ON CONFLICT DO UPDATE for the
batch), so the caller sends only what grew. The network_sid of a serving MCC/MNC is
`networks.network_for(mcc, mnc).sid`: a SIM can only attach to networks of the catalogue. The
Fleet recorded is the SIM's Fleet when the usage happened, as UsageRecords' Fleet filter means.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from simplane.core.bulk import BulkSql
from simplane.network.rollups import hour_of
from simplane.network.rollups import spans as rollup_spans
from simplane.supersim.models import UsageHour

COUNTERS = ["data_upload", "data_download", "data_total"]
GROUP_COLUMNS = {"sim": "sim_sid", "fleet": "fleet_sid", "network": "network_sid",
                 "isoCountry": "iso_country"}
STEPS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


def add_usage(db: Session, rows: Iterable[dict]) -> None:
    merged: dict[tuple, dict] = {}
    for row in rows:
        up, down = int(row.get("data_upload", 0)), int(row.get("data_download", 0))
        if up < 0 or down < 0:
            raise ValueError("usage must not be negative")
        hour = hour_of(row["hour"])  # rows may carry any minute
        key = (row["sim_sid"], hour, row["network_sid"])
        into = merged.get(key)
        if into is None:
            merged[key] = {"account_sid": row["account_sid"], "sim_sid": row["sim_sid"],
                           "fleet_sid": row.get("fleet_sid"), "network_sid": row["network_sid"],
                           "iso_country": row.get("iso_country"), "hour": hour,
                           "data_upload": up, "data_download": down, "data_total": up + down}
        else:
            into["data_upload"] += up
            into["data_download"] += down
            into["data_total"] += up + down
    upsert(db, (tuple(row[n] for n in COLUMNS) for row in merged.values()))


COLUMNS = ("account_sid", "sim_sid", "fleet_sid", "network_sid", "iso_country", "hour", *COUNTERS)


def upsert(db: Session, rows: Iterable[tuple]) -> None:
    """Add rows already merged (tuples in COLUMNS order, `hour` a whole hour): one statement."""
    BulkSql(db).upsert_add(UsageHour.__table__, ("sim_sid", "hour", "network_sid"), COLUMNS,
                           COUNTERS, rows)


def data_used(db: Session, sim_sid: str, since: datetime) -> int:
    """Bytes a SIM moved from the hour of `since` on (e.g. in its current billing period)."""
    return int(db.scalar(select(func.coalesce(func.sum(UsageHour.data_total), 0))
                         .where(UsageHour.sim_sid == sim_sid,
                                UsageHour.hour >= hour_of(since))) or 0)


def records(db: Session, account_sid: str, start: datetime, end: datetime, granularity: str,
            group: str | None, filters: dict[str, str]) -> list[dict]:
    """Usage summed per period (newest first) and, with `group`, per value of that dimension.
    Without a group every period is listed, empty or not, as a time series."""
    dim = getattr(UsageHour, GROUP_COLUMNS[group]) if group else None
    stmt = (select(UsageHour.hour, *([dim] if dim is not None else []),
                   *(func.sum(getattr(UsageHour, c)) for c in COUNTERS))
            .where(UsageHour.account_sid == account_sid, UsageHour.hour >= hour_of(start),
                   UsageHour.hour < end)
            .group_by(UsageHour.hour, *([dim] if dim is not None else [])))
    for name, wanted in filters.items():
        stmt = stmt.where(getattr(UsageHour, GROUP_COLUMNS[name]) == wanted)
    spans = rollup_spans(start, end, STEPS.get(granularity))
    by_start = {span[0]: span for span in spans}
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in db.execute(stmt):
        hour, rest = row[0], list(row[1:])
        value = rest.pop(0) if dim is not None else None
        if granularity == "all":
            span = spans[0]
        else:
            first = hour if granularity == "hour" else hour.replace(hour=0)
            span = by_start.get(max(first, start))  # type: ignore[assignment]
            if span is None:
                continue
        bucket = totals[(span, value)]
        for i, amount in enumerate(rest):
            bucket[i] += int(amount or 0)
    if group:
        keys = sorted(totals, key=lambda k: (-k[0][0].timestamp(), k[1] or ""))
    else:
        keys = [(span, None) for span in reversed(spans)]
    result = []
    for span, value in keys:
        up, down, total = totals.get((span, value), (0, 0, 0))
        record = {"start": span[0], "end": span[1], "data_upload": up, "data_download": down,
                  "data_total": total, **dict.fromkeys(GROUP_COLUMNS.values())}
        for name, filtered in filters.items():
            record[GROUP_COLUMNS[name]] = filtered
        if group:
            record[GROUP_COLUMNS[group]] = value
        result.append(record)
    return result
