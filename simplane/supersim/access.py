"""What the network asks of Super SIM, in bulk: who a SIM is, and whether it may attach.

    facts = sims_by_imsi(db, {event.imsi for event in batch})    # two queries per batch
    refusal = attach_decision(facts.get(imsi), mcc, mnc)          # None, or (code, message)

`sims_by_imsi` returns only registered SIMs (a SIM still in the operator's inventory is unknown
to the network). `attach_decision` gives Twilio's rejection reasons: a SIM that is not ready or
active (83705), or a serving network outside the Network Access Profile of the SIM's Fleet.
A SIM with facts.data_enabled false may attach but gets no data session; facts.data_limit is the
Fleet's per-billing-period allowance in bytes. Ingest counts usage against it in the SIM's
network state; the rollups give the same sum (`usage.data_used(db, facts.sid,
facts.period_start(now))`).

`set_ip_addresses(db, {sim_sid: ip})` records the address of each SIM's data session (None when
it ends): IpAddresses lists it, and IP Commands are sent to it and recognised by it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from simplane.core.bulk import BulkSql
from simplane.supersim import billing, networks
from simplane.supersim import errors as E
from simplane.supersim.models import Fleet, NetworkAccessProfileNetwork, Sim

BYTES_PER_MB = 1_000_000
CONNECTED = ("ready", "active")  # the statuses that may attach, use data and take commands


class SimFacts(NamedTuple):
    sid: str
    account_sid: str
    iccid: str
    imsi: str
    unique_name: str | None
    status: str
    fleet_sid: str | None
    data_enabled: bool
    data_limit: int | None  # bytes per billing period; None without a Fleet
    allowed_networks: frozenset[tuple[str, str]]  # (mcc, mnc) the Fleet's NAP allows
    date_ready: datetime | None
    date_activated: datetime | None

    def period_start(self, now: datetime) -> datetime | None:
        """Start of the current billing period: usage toward data_limit counts from here."""
        period = billing.current_period(self.date_ready, self.date_activated, now)
        return period[1] if period else None


SIM_COLUMNS = [Sim.__table__.c[name] for name in (
    "sid", "account_sid", "iccid", "imsi", "unique_name", "status", "date_ready",
    "date_activated")] + [Fleet.__table__.c[name] for name in (
        "sid", "data_enabled", "data_limit", "nap_pk")]
SIMS_FROM = (f"{Sim.__tablename__} LEFT OUTER JOIN {Fleet.__tablename__} "
             f"ON {Fleet.__tablename__}.pk = {Sim.__tablename__}.fleet_pk")


def sims_by_imsi(db: Session, imsis: Iterable[str]) -> dict[str, SimFacts]:
    wanted = {(imsi,) for imsi in imsis}
    if not wanted:
        return {}
    rows = [row for row in BulkSql(db).select_in(SIM_COLUMNS, SIMS_FROM, [Sim.imsi], wanted)
            if row[1] is not None]  # registered to an account
    nap_pks = {row[11] for row in rows if row[11] is not None}
    found: dict[int, set[tuple[str, str]]] = {pk: set() for pk in nap_pks}
    if nap_pks:
        for nap_pk, network_sid in db.execute(
                select(NetworkAccessProfileNetwork.nap_pk, NetworkAccessProfileNetwork.network_sid)
                .where(NetworkAccessProfileNetwork.nap_pk.in_(nap_pks))):
            network = networks.get(network_sid)
            if network is not None:
                found[nap_pk].update(network.identifiers)
    allowed = {pk: frozenset(networks_of) for pk, networks_of in found.items()}
    none: frozenset[tuple[str, str]] = frozenset()
    return {imsi: SimFacts(
        sid, account_sid, iccid, imsi, unique_name, status, fleet_sid,
        bool(data_enabled) if fleet_sid else False,
        data_limit * BYTES_PER_MB if data_limit is not None else None,
        allowed.get(nap_pk, none), date_ready, date_activated)
        for (sid, account_sid, iccid, imsi, unique_name, status, date_ready, date_activated,
             fleet_sid, data_enabled, data_limit, nap_pk) in rows}


def attach_decision(facts: SimFacts, mcc: str, mnc: str) -> tuple[int, str] | None:
    """None when the SIM may attach to the network mcc/mnc, else Twilio's (code, message)."""
    if facts.status not in CONNECTED:
        return (E.SIM_NOT_ACTIVE, (f"Super SIM {facts.sid} is {facts.status}: only ready and "
                                   "active Super SIMs may attach"))
    if (mcc, mnc) not in facts.allowed_networks:
        network = networks.network_for(mcc, mnc)
        name = f"{network.friendly_name} ({mcc}-{mnc})" if network else f"{mcc}-{mnc}"
        return (E.NETWORK_NOT_ALLOWED, (f"Network {name} is not allowed by the Network "
                                        f"Access Profile of Fleet {facts.fleet_sid}"))
    return None


def set_ip_addresses(db: Session, addresses: dict[str, str | None]) -> None:
    """One statement for the batch: each SIM's data session address (None: no session)."""
    BulkSql(db).update(Sim.__table__, "sid", ("ip_address",),
                       ({"sid": sid, "ip_address": ip} for sid, ip in addresses.items()))
