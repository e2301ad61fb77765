"""Disconnect-Requests (RFC 5176) owed to packet gateways: the queue.

A data session carried by a gateway that takes Disconnect-Requests (`disconnect_to`, recorded by
the RADIUS accounting listener run with a Dynamic Authorization port) is cut off at the gateway
when the SIM may no longer use data there: its status, its rate plan or Fleet changed
(`enforce`, which asks the one policy, `simplane.network.policy.decide`), its connectivity is
reset (`reset`), or ingest ended it at its data limit (`queue`). The request is a row written in
the transaction of that change, so it is owed exactly when the change commits; the sender
(`simplane.network.dae`) sends it and retries it until the gateway answers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from simplane.network.cache import IngestCache
from simplane.network.models import DataSession, Disconnect, SimState
from simplane.network.policy import SIM_NOT_ACTIVE, decide, period_key, plans_of
from simplane.supersim.models import Sim as SuperSim
from simplane.wireless.models import Sim

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

RESET = "RESET"  # the reason of a connectivity reset
USED = ("used_home", "used_national", "used_international")
OPEN_COLUMNS = (DataSession.sim_sid, DataSession.account_sid, DataSession.session_id,
                DataSession.disconnect_to, DataSession.user_name, DataSession.ip_address,
                DataSession.gateway, DataSession.operator_mcc, DataSession.operator_mnc)


def nas_identifier(gateway: str | None) -> str | None:
    """The NAS-Identifier a gateway gave (a session's `gateway` is that, else its address)."""
    if not gateway:
        return None
    try:
        ipaddress.ip_address(gateway)
    except ValueError:
        return gateway
    return None


def queue(db: Session, sessions: Iterable[Mapping[str, Any]], reason: str,
          now: datetime) -> int:
    """Owe a Disconnect-Request for each of these sessions (dicts with the session's columns,
    `imsi` and `account_sid`) that has a gateway to send it to and none owed yet; returns how
    many were added."""
    wanted = {(s["sim_sid"], s["session_id"]): s for s in sessions if s["disconnect_to"]}
    if not wanted:
        return 0
    keys = list(wanted)
    known: set[tuple[str, str]] = set()
    for at in range(0, len(keys), 500):
        known.update(db.execute(select(Disconnect.sim_sid, Disconnect.session_id).where(
            tuple_(Disconnect.sim_sid, Disconnect.session_id).in_(keys[at:at + 500]))).all())
    rows = [Disconnect(
        account_sid=s["account_sid"], sim_sid=s["sim_sid"], imsi=s["imsi"],
        session_id=s["session_id"], address=s["disconnect_to"], user_name=s["user_name"],
        framed_ip=s["ip_address"], nas_identifier=nas_identifier(s["gateway"]), reason=reason,
        status="pending", attempts=0, next_attempt_at=now, date_created=now, date_updated=now)
        for key, s in wanted.items() if key not in known]
    db.add_all(rows)
    db.flush()
    return len(rows)


def open_sessions(db: Session, sim_sids: Iterable[str]) -> list[dict[str, Any]]:
    """The open sessions of these SIMs that a gateway could be asked to end, with each SIM's
    IMSI."""
    sids = set(sim_sids)
    if not sids:
        return []
    found = [dict(row._mapping) for row in db.execute(
        select(*OPEN_COLUMNS).where(DataSession.sim_sid.in_(sids), DataSession.status == "open",
                                    DataSession.disconnect_to.is_not(None)))]
    if not found:
        return []
    wanted = {s["sim_sid"] for s in found}
    imsis = dict(db.execute(select(Sim.sid, Sim.imsi).where(Sim.sid.in_(wanted))).all())
    imsis.update(db.execute(select(SuperSim.sid, SuperSim.imsi)
                            .where(SuperSim.sid.in_(wanted - imsis.keys()))).all())
    return [{**s, "imsi": imsis[s["sim_sid"]]} for s in found if imsis.get(s["sim_sid"])]


def enforce(db: Session, runtime: Runtime, sim_sids: Iterable[str]) -> int:
    """After a change to these SIMs (their status, rate plan or Fleet), in its transaction: owe
    a Disconnect-Request for every open session that the policy would not let start now."""
    db.flush()
    sessions = open_sessions(db, sim_sids)
    if not sessions:
        return 0
    now = runtime.clock.now()
    # Read afresh: what the process keeps is for committed facts, and these are not yet.
    plans = plans_of(db, {s["imsi"] for s in sessions}, IngestCache())
    states = {row.sim_sid: row for row in db.scalars(
        select(SimState).where(SimState.sim_sid.in_({s["sim_sid"] for s in sessions})))}
    refused: dict[str, list[dict[str, Any]]] = {}
    for session in sessions:
        found = plans.get(session["imsi"])
        if found is None:  # no longer a SIM of an account
            refused.setdefault(SIM_NOT_ACTIVE, []).append(session)
            continue
        plan = found[2]
        state = states.get(session["sim_sid"])
        used = None
        if state is not None and state.period == period_key(plan, now):
            used = dict(zip(("home", "national", "international"),
                            (getattr(state, column) for column in USED), strict=True))
        decision = decide(plan, session["imsi"], session["operator_mcc"],
                          session["operator_mnc"], used)
        if decision.refusal:
            refused.setdefault(decision.refusal, []).append(session)
    added = sum(queue(db, group, reason, now) for reason, group in refused.items())
    if added:
        runtime.worker.wake_after_commit(db)
    return added


def reset(db: Session, runtime: Runtime, sim_sids: Iterable[str]) -> int:
    """A connectivity reset of these SIMs: owe a Disconnect-Request for each open session (the
    device attaches again afresh)."""
    added = queue(db, open_sessions(db, sim_sids), RESET, runtime.clock.now())
    if added:
        runtime.worker.wake_after_commit(db)
    return added


def pending(db: Session, sim_sids: Iterable[str]) -> set[str]:
    """Those of these SIMs with a Disconnect-Request not yet answered."""
    sids = set(sim_sids)
    if not sids:
        return set()
    return set(db.scalars(select(Disconnect.sim_sid).distinct().where(
        Disconnect.sim_sid.in_(sids), Disconnect.status == "pending")))
