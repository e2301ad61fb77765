"""Disconnect-Requests (RFC 5176) owed to packet gateways: the queue.

A data session reported by RADIUS accounting knows where its gateway takes Disconnect-Requests
(`disconnect_to`: its NAS-IP-Address, else the address its accounting came from), whatever the
server's options. It is cut off at the gateway when the SIM may no longer use data there: its
status, its rate plan, its Fleet or the Fleet's Network Access Profile changed (`enforce`, which
asks the one policy, `simplane.network.policy.decide`), its connectivity is reset (`reset`), or
ingest ended it at its data limit (`queue`). The request is a row written in the transaction of
that change, so it is owed exactly when the change commits; the sender (`simplane.network.dae`)
sends it and retries it until the gateway answers.

A server without a Dynamic Authorization port (`--radius-dae-port`) sends nothing, and what
changes meanwhile is kept `held`, shown with the SIM's requests but not sent. Once a server runs
with the port, every held request is looked at again (`release`): one whose session is still
open goes out if the policy still refuses that session now (for the reason it gives now; a SIM
made active again meanwhile keeps its session, and the request is `dropped`), one whose session
ingest ended on its own (a SIM made inactive, a limit reached) goes out as it was, and one whose
session its gateway ended meanwhile is `ended`. A reset without the port completes without its
gateway, as before (nothing is held: a reset done long ago is not done again).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from simplane.network.cache import IngestCache
from simplane.network.models import DataSession, Disconnect, SimState
from simplane.network.policy import (
    DATA_LIMIT_REACHED,
    SIM_NOT_ACTIVE,
    decide,
    period_key,
    plans_of,
)
from simplane.supersim.models import Sim as SuperSim
from simplane.wireless.models import Sim

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

log = logging.getLogger(__name__)

RESET = "RESET"  # the reason of a connectivity reset
# Sessions ingest ended on its own (the SIM made inactive, its limit reached), which their gateway
# still carries; any other ended session was ended by its gateway.
CARRIED = (SIM_NOT_ACTIVE, DATA_LIMIT_REACHED)
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


def sends(runtime: Runtime) -> bool:
    """Whether this server sends Disconnect-Requests (it has a `--radius-dae-port`)."""
    return runtime.settings.radius_dae_port is not None


def queue(db: Session, sessions: Iterable[Mapping[str, Any]], reason: str,
          now: datetime, held: bool = False) -> int:
    """Owe a Disconnect-Request for each of these sessions (dicts with the session's columns,
    `imsi` and `account_sid`) that has a gateway to send it to and none owed yet, `held` where
    none can be sent now (see the module's notes); returns how many were added."""
    wanted = {(s["sim_sid"], s["session_id"]): s for s in sessions if s["disconnect_to"]}
    if not wanted:
        return 0
    keys = list(wanted)
    known: set[tuple[str, str]] = set()
    status = "held" if held else "pending"
    rearmed = 0
    for at in range(0, len(keys), 500):
        for row in db.scalars(select(Disconnect).where(
                tuple_(Disconnect.sim_sid, Disconnect.session_id).in_(keys[at:at + 500]))):
            known.add((row.sim_sid, row.session_id))
            if row.status == "dropped":  # no longer called for then, called for again now
                row.status, row.reason, row.attempts, row.last_error = status, reason, 0, None
                row.next_attempt_at = row.date_created = row.date_updated = now
                rearmed += 1
    rows = [Disconnect(
        account_sid=s["account_sid"], sim_sid=s["sim_sid"], imsi=s["imsi"],
        session_id=s["session_id"], address=s["disconnect_to"], user_name=s["user_name"],
        framed_ip=s["ip_address"], nas_identifier=nas_identifier(s["gateway"]), reason=reason,
        status=status, attempts=0, next_attempt_at=now, date_created=now,
        date_updated=now)
        for key, s in wanted.items() if key not in known]
    db.add_all(rows)
    db.flush()
    return len(rows) + rearmed


def open_sessions(db: Session, sim_sids: Iterable[str]) -> list[dict[str, Any]]:
    """The open sessions of these SIMs that a gateway could be asked to end, with each SIM's
    IMSI."""
    sids = sorted(set(sim_sids))
    found = [dict(row._mapping) for at in range(0, len(sids), 500) for row in db.execute(
        select(*OPEN_COLUMNS).where(DataSession.sim_sid.in_(sids[at:at + 500]),
                                    DataSession.status == "open",
                                    DataSession.disconnect_to.is_not(None)))]
    return _with_imsis(db, found)


def _with_imsis(db: Session, sessions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not sessions:
        return []
    wanted = sorted({s["sim_sid"] for s in sessions})
    imsis: dict[str, str] = {}
    for at in range(0, len(wanted), 500):
        chunk = wanted[at:at + 500]
        imsis.update(db.execute(select(Sim.sid, Sim.imsi).where(Sim.sid.in_(chunk))).all())
        imsis.update(db.execute(select(SuperSim.sid, SuperSim.imsi).where(
            SuperSim.sid.in_(set(chunk) - imsis.keys()))).all())
    return [{**s, "imsi": imsis[s["sim_sid"]]} for s in sessions if imsis.get(s["sim_sid"])]


def refusals(db: Session, runtime: Runtime, sessions: list[dict[str, Any]]
             ) -> dict[tuple[str, str], str]:
    """(SIM SID, session ID) → why the policy would not let each of these open sessions (with
    their SIM's IMSI) start now, for those it would not: the SIMs' facts and usage read afresh
    in the caller's transaction (what the process keeps is for committed facts)."""
    if not sessions:
        return {}
    db.flush()
    now = runtime.clock.now()
    plans = plans_of(db, {s["imsi"] for s in sessions}, IngestCache())
    sids = sorted({s["sim_sid"] for s in sessions})
    states = {row.sim_sid: row for at in range(0, len(sids), 500) for row in db.scalars(
        select(SimState).where(SimState.sim_sid.in_(sids[at:at + 500])))}
    refused: dict[tuple[str, str], str] = {}
    for session in sessions:
        key = (session["sim_sid"], session["session_id"])
        found = plans.get(session["imsi"])
        if found is None:  # no longer a SIM of an account
            refused[key] = SIM_NOT_ACTIVE
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
            refused[key] = decision.refusal
    return refused


def enforce(db: Session, runtime: Runtime, sim_sids: Iterable[str]) -> int:
    """After a change to these SIMs (their status, rate plan, Fleet or its Network Access
    Profile), in its transaction: owe a Disconnect-Request for every open session that the
    policy would not let start now (held without a DAE port)."""
    db.flush()
    sessions = open_sessions(db, sim_sids)
    refused: dict[str, list[dict[str, Any]]] = {}
    why = refusals(db, runtime, sessions)
    for session in sessions:
        reason = why.get((session["sim_sid"], session["session_id"]))
        if reason:
            refused.setdefault(reason, []).append(session)
    now = runtime.clock.now()
    held = not sends(runtime)
    added = sum(queue(db, group, reason, now, held) for reason, group in refused.items())
    if added and not held:
        runtime.worker.wake_after_commit(db)
    return added


def reset(db: Session, runtime: Runtime, sim_sids: Iterable[str]) -> int:
    """A connectivity reset of these SIMs: owe a Disconnect-Request for each open session (the
    device attaches again afresh); none without a DAE port (the reset completes without it)."""
    if not sends(runtime):
        return 0
    added = queue(db, open_sessions(db, sim_sids), RESET, runtime.clock.now())
    if added:
        runtime.worker.wake_after_commit(db)
    return added


RELEASE_BATCH = 500


def release(runtime: Runtime) -> int:
    """Look again at the requests held while no server sent Disconnect-Requests (see the
    module's notes), a batch at a time; returns how many were looked at."""
    done = 0
    while True:
        with runtime.db.read() as db:  # a cheap read first: usually there are none
            if db.scalar(select(Disconnect.pk).where(Disconnect.status == "held").limit(1)) is None:
                return done
        with runtime.db.write() as db:
            rows = list(db.scalars(select(Disconnect).where(Disconnect.status == "held")
                                   .order_by(Disconnect.pk).limit(RELEASE_BATCH)
                                   .with_for_update(skip_locked=True)))
            if not rows:
                return done
            _release(db, runtime, rows)
            done += len(rows)


def _release(db: Session, runtime: Runtime, rows: list[Disconnect]) -> None:
    now = runtime.clock.now()
    keys = [(row.sim_sid, row.session_id) for row in rows]
    sessions = {(s["sim_sid"], s["session_id"]): s for s in (
        dict(found._mapping) for found in db.execute(
            select(*OPEN_COLUMNS, DataSession.status, DataSession.end_reason).where(
                tuple_(DataSession.sim_sid, DataSession.session_id).in_(keys))))}
    still_open = _with_imsis(db, [s for s in sessions.values() if s["status"] == "open"])
    why = refusals(db, runtime, still_open)
    for row in rows:
        key = (row.sim_sid, row.session_id)
        session = sessions.get(key)
        reason: str | None = row.reason
        if session is not None and session["status"] == "open":
            reason = why.get(key)
        elif session is None or session["end_reason"] not in CARRIED:
            row.status, row.date_updated = "ended", now
            row.last_error = "its session ended first"
            continue
        if reason is None:
            row.status, row.date_updated = "dropped", now
            row.last_error = "the policy lets the session go on now"
            continue
        # Made now, as far as sending goes: its retry horizon counts from here.
        row.status, row.reason, row.next_attempt_at, row.date_created, row.date_updated = (
            "pending", reason, now, now, now)
    log.info("radius: %d held Disconnect-Requests looked at again", len(rows))


def pending(db: Session, sim_sids: Iterable[str]) -> set[str]:
    """Those of these SIMs with a Disconnect-Request not yet answered."""
    sids = set(sim_sids)
    if not sids:
        return set()
    return set(db.scalars(select(Disconnect.sim_sid).distinct().where(
        Disconnect.sim_sid.in_(sids), Disconnect.status == "pending")))
