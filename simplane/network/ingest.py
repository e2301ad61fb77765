"""The one ingest path: normalised network events in, data sessions and usage rollups out, in one
transaction. It is the only writer of both.

Counters arrive cumulative per session; ingest keeps the highest seen and adds only the growth, so
a retransmitted, repeated or out-of-order event never counts twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from simplane.core.sids import new_sid
from simplane.network.events import NetworkEvent, home_network, operator
from simplane.network.models import AccountUsageHour, DataSession, SimUsageHour
from simplane.wireless.models import Sim

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

COUNTERS = ("bytes_up", "bytes_down", "packets_up", "packets_down")


@dataclass
class IngestResult:
    accepted: int = 0
    unknown_imsi: int = 0
    sessions_started: int = 0
    sessions_ended: int = 0
    bytes_counted: int = 0
    unknown: list[str] = field(default_factory=list)


def ingest(runtime: Runtime, events: Sequence[NetworkEvent]) -> IngestResult:
    """Ingest a batch: all of it is written, or (on any error) none of it."""
    with runtime.db.write() as db:
        return ingest_into(db, events)


def roaming_class(imsi: str, mcc: str | None, mnc: str | None) -> str:
    home_mcc, home_mnc = home_network(imsi)
    if mcc is None or (mcc == home_mcc and mnc == home_mnc):
        return "home"
    return "national" if mcc == home_mcc else "international"


def ingest_into(db: Session, events: Sequence[NetworkEvent]) -> IngestResult:
    result = IngestResult()
    sims = {row.imsi: row for row in db.execute(
        select(Sim.sid, Sim.account_sid, Sim.imsi).where(Sim.imsi.in_({e.imsi for e in events})))}
    keys = {(sims[e.imsi].sid, e.session_id) for e in events if e.session_id and e.imsi in sims}
    sessions: dict[tuple[str, str], DataSession] = {}
    if keys:
        for s in db.scalars(select(DataSession).where(
                tuple_(DataSession.sim_sid, DataSession.session_id).in_(list(keys)))):
            sessions[(s.sim_sid, s.session_id)] = s
    usage: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])

    for event in events:
        sim = sims.get(event.imsi)
        if sim is None:
            result.unknown_imsi += 1
            result.unknown.append(event.imsi)
            continue
        result.accepted += 1
        if event.session_id is None:
            continue  # attachment events carry no session state for Wireless
        key = (sim.sid, event.session_id)
        session = sessions.get(key)
        if session is None:
            session = _open(db, sim, event)
            sessions[key] = session
            result.sessions_started += 1
        _locate(session, event)
        growth = [max(0, getattr(event, c) - getattr(session, c)) for c in COUNTERS]
        for counter, grew in zip(COUNTERS, growth, strict=True):
            if grew:
                setattr(session, counter, getattr(session, counter) + grew)
        session.last_updated = max(session.last_updated, event.time)
        if growth[0] or growth[1]:
            hour = hour_of(event.time)
            bucket = usage[(sim.sid, sim.account_sid, hour, session.roaming,
                            session.operator_country or "")]
            bucket[0] += growth[0]
            bucket[1] += growth[1]
            result.bytes_counted += growth[0] + growth[1]
        if event.kind in ("session.ended", "session.failed") and session.status == "open":
            session.status = "ended" if event.kind == "session.ended" else "failed"
            session.end = event.time
            result.sessions_ended += 1
    db.flush()
    _add_usage(db, usage)
    return result


def _open(db: Session, sim, event: NetworkEvent) -> DataSession:  # type: ignore[no-untyped-def]
    op = operator(event.mcc, event.mnc) if event.mcc and event.mnc else None
    session = DataSession(
        sid=new_sid("WN"), account_sid=sim.account_sid, sim_sid=sim.sid,
        session_id=event.session_id, status="open", radio_link=event.rat,
        operator_mcc=event.mcc, operator_mnc=event.mnc,
        operator_country=op.country if op else None, operator_name=op.name if op else None,
        roaming=roaming_class(event.imsi, event.mcc, event.mnc), imei=event.imei, apn=event.apn,
        ip_address=event.ip_address, start=event.time, end=None, last_updated=event.time,
        bytes_up=0, bytes_down=0, packets_up=0, packets_down=0,
    )
    db.add(session)
    return session


def _locate(session: DataSession, event: NetworkEvent) -> None:
    """Keep the newest radio facts the network sent."""
    if event.time < session.last_updated:
        return
    for attr, value in (("cell_id", event.cell_id), ("lac", event.lac), ("lat", event.lat),
                        ("lon", event.lon), ("imei", event.imei), ("radio_link", event.rat),
                        ("ip_address", event.ip_address)):
        if value is not None:
            setattr(session, attr, value)


def _add_usage(db: Session, usage: dict[tuple, list[int]]) -> None:
    if not usage:
        return
    per_account: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    sim_rows = []
    for (sim_sid, account_sid, hour, roaming, country), (up, down) in usage.items():
        sim_rows.append({"sim_sid": sim_sid, "account_sid": account_sid, "hour": hour,
                         "roaming": roaming, "country": country, "upload": up, "download": down})
        total = per_account[(account_sid, hour, roaming, country)]
        total[0] += up
        total[1] += down
    account_rows = [{"account_sid": a, "hour": h, "roaming": r, "country": c, "upload": up,
                     "download": down} for (a, h, r, c), (up, down) in per_account.items()]
    _upsert_add(db, SimUsageHour, ["sim_sid", "hour", "roaming", "country"], sim_rows)
    _upsert_add(db, AccountUsageHour, ["account_sid", "hour", "roaming", "country"], account_rows)


def _upsert_add(db: Session, model, keys: list[str], rows: list[dict]) -> None:  # type: ignore[no-untyped-def]
    """INSERT … ON CONFLICT DO UPDATE adding the counters (SQLite and PostgreSQL alike)."""
    insert = sqlite_insert if db.get_bind().dialect.name == "sqlite" else pg_insert
    stmt = insert(model)
    table = model.__table__
    stmt = stmt.on_conflict_do_update(index_elements=keys, set_={
        "upload": table.c.upload + stmt.excluded.upload,
        "download": table.c.download + stmt.excluded.download,
    })
    db.execute(stmt, rows)


def hour_of(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)
