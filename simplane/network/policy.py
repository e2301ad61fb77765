"""What a Wireless rate plan lets a SIM do on the network: whether a data session may start on a
network (home, national or international roaming), and how many bytes it may move there in a
billing period before the network blocks it.

Limits are per billing period and per roaming class, as the rate plan's `data_limit`,
`national_roaming_data_limit` and `international_roaming_data_limit` say (in MB). As Twilio
meters them, a period runs from the day (and time) of the SIM's activation to the same day the
next month; before activation, usage counts by calendar month. With
`data_limit_strategy=throttle` the network slows the SIM down instead of blocking it: no cap.

`FleetPlan` says the same of a Super SIM from its Fleet: one limit for every network (`used` is
then the SIM's total in its billing period), and only the networks of the Fleet's Network Access
Profile.

`decide` is the one answer to "may this SIM use data now, on this network": ingest asks it when a
session starts (and refuses the session if not), RADIUS authorisation asks it for an
Access-Request, and the Disconnect queue asks it of open sessions when a SIM or its plan changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from simplane.core.bulk import BulkSql
from simplane.core.clock import add_months, from_driver, month_started, utc
from simplane.network import cache
from simplane.network.events import home_network
from simplane.supersim.access import attach_decision, sims_by_imsi
from simplane.supersim.billing import current_period
from simplane.wireless.models import RatePlan, Sim

MB = 1_000_000
CAN_USE_DATA = frozenset({"ready", "active"})

SIM_NOT_ACTIVE = "SIM_NOT_ACTIVE"
NO_RATE_PLAN = "NO_RATE_PLAN"
DATA_DISABLED = "DATA_DISABLED"
ROAMING_DISABLED = "ROAMING_DISABLED"
NETWORK_NOT_ALLOWED = "NETWORK_NOT_ALLOWED"
DATA_LIMIT_REACHED = "DATA_LIMIT_REACHED"


@dataclass(frozen=True, slots=True)
class Plan:
    """A SIM's status and the parts of its rate plan the network enforces (limits in bytes)."""

    status: str
    has_plan: bool
    data_enabled: bool = False
    throttle: bool = False
    home_limit: int = 0
    national_enabled: bool = False
    national_limit: int = 0
    international_enabled: bool = False
    international_limit: int = 0
    activated: datetime | None = None  # the SIM's date_activated

    @classmethod
    def of(cls, status: str, data_enabled: bool | None, data_limit: int, strategy: str,
           national_enabled: bool, national_limit: int,
           international_roaming: Sequence[str] | None,
           international_limit: int, activated: datetime | None) -> Plan:
        """From a SIM's status and its rate plan's columns (all None without a plan)."""
        if data_enabled is None:
            return cls(status, has_plan=False, activated=activated)
        return cls(status, True, bool(data_enabled), strategy == "throttle", data_limit * MB,
                   bool(national_enabled), national_limit * MB,
                   "data" in (international_roaming or ()), international_limit * MB, activated)

    @property
    def anchor(self) -> Any:
        """What the SIM's billing periods are counted from."""
        return self.activated

    def period_start(self, when: datetime) -> datetime | None:
        """The start of the billing period `when` falls in; None before activation."""
        activated = self.activated
        return month_started(activated, when) if activated and when >= activated else None

    def period_end(self, when: datetime) -> datetime:
        """The end of the billing period `when` falls in (where its limits renew)."""
        return add_months(self.period_start(when) or calendar_month(when), 1)

    def may_use_data(self) -> bool:
        """Whether the SIM's status lets it use data at all (an open session ends otherwise)."""
        return self.status in CAN_USE_DATA

    def refusal(self, roaming: str, used: int, mcc: str | None = None,
                mnc: str | None = None) -> str | None:
        """Why a data session may not start on network mcc/mnc (of this roaming class), having
        used `used` bytes this period, or None."""
        if self.status not in CAN_USE_DATA:
            return SIM_NOT_ACTIVE
        if not self.has_plan:
            return NO_RATE_PLAN
        if not self.data_enabled:
            return DATA_DISABLED
        if (roaming == "national" and not self.national_enabled) or (
                roaming == "international" and not self.international_enabled):
            return ROAMING_DISABLED
        if self.room(roaming, used) == 0:
            return DATA_LIMIT_REACHED
        return None

    def limit(self, roaming: str) -> int:
        """The plan's data limit (bytes a period) on a network of this roaming class."""
        return {"home": self.home_limit, "national": self.national_limit}.get(
            roaming, self.international_limit)

    def room(self, roaming: str, used: int) -> int | None:
        """Bytes the SIM may still move this period on such a network (None: no cap)."""
        if self.throttle:
            return None
        return max(self.limit(roaming) - used, 0)


@dataclass(frozen=True, slots=True)
class FleetPlan:
    """A Super SIM and its Fleet: the SIM may attach only where the Fleet's Network Access
    Profile allows, and may move `data_limit` bytes a billing period, whatever the network."""

    facts: Any  # simplane.supersim.access.SimFacts

    @property
    def anchor(self) -> Any:
        return self.facts.date_ready, self.facts.date_activated

    def period_start(self, when: datetime) -> datetime | None:
        return self.facts.period_start(when)

    def period_end(self, when: datetime) -> datetime:
        period = current_period(self.facts.date_ready, self.facts.date_activated, when)
        return period[2] if period else add_months(calendar_month(when), 1)

    def may_use_data(self) -> bool:
        return self.facts.status in CAN_USE_DATA

    def refusal(self, roaming: str, used: int, mcc: str | None = None,
                mnc: str | None = None) -> str | None:
        if self.facts.status not in CAN_USE_DATA:
            return SIM_NOT_ACTIVE
        if mcc is None or mnc is None or attach_decision(self.facts, mcc, mnc):
            return NETWORK_NOT_ALLOWED  # the profile allows only networks it can name
        if not self.facts.data_enabled:
            return DATA_DISABLED
        if self.room(roaming, used) == 0:
            return DATA_LIMIT_REACHED
        return None

    def room(self, roaming: str, used: int) -> int | None:
        limit = self.facts.data_limit
        return None if limit is None else max(limit - used, 0)


def roaming_class(imsi: str, mcc: str | None, mnc: str | None) -> str:
    """home, national or international: the serving network mcc/mnc seen from the IMSI's."""
    home_mcc, home_mnc = home_network(imsi)
    if mcc is None or (mcc == home_mcc and mnc == home_mnc):
        return "home"
    return "national" if mcc == home_mcc else "international"


def calendar_month(when: datetime) -> datetime:
    return when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def period_key(plan: Plan | FleetPlan, when: datetime) -> str:
    """The billing period `when` falls in, by its first second (YYYY-MM-DDTHH:MM:SS): a month
    from activation (for Super SIM, the ready period too), else the calendar month."""
    return period_of(plan, when)[0]


PERIODS_KEPT = 200_000
_periods: dict[tuple, tuple[datetime, datetime, str, datetime]] = {}


def period_of(plan: Plan | FleetPlan, when: datetime) -> tuple[str, datetime]:
    """`period_key(plan, when)` and `plan.period_end(when)`. Both stay the same from the start
    of that period to its end (or, before any period of the SIM's, to the end of the calendar
    month or the SIM's next dated moment), so they are kept by the plan's anchor for that span:
    a SIM asked about again and again is worked out once a period."""
    kept = _periods.get((type(plan), plan.anchor))
    if kept is not None and kept[0] <= when < kept[1]:
        return kept[2], kept[3]
    start = plan.period_start(when)
    end = plan.period_end(when)
    if start is None:
        start = calendar_month(when)
        moments = plan.anchor if isinstance(plan.anchor, tuple) else (plan.anchor,)
        until = min((m for m in moments if m is not None and m > when), default=end)
        until = min(until, end)
    else:
        until = end
    key = utc(start).strftime("%Y-%m-%dT%H:%M:%S")
    if start <= when < until:
        if len(_periods) >= PERIODS_KEPT:
            _periods.clear()
        _periods[(type(plan), plan.anchor)] = (start, until, key, end)
    return key, end


@dataclass(frozen=True, slots=True)
class Decision:
    refusal: str | None  # why not (SIM_NOT_ACTIVE, …), or None: the SIM may use data
    roaming: str
    room: int | None  # bytes it may still move this period on that network (None: no cap)


def used_against(plan: Plan | FleetPlan, used: Mapping[str, int] | None, roaming: str) -> int:
    """Bytes counted against the limit that applies on a network of this roaming class, from
    the SIM's usage this period by roaming class (None: nothing counted this period)."""
    if not used:
        return 0
    if isinstance(plan, FleetPlan):  # one limit for every network
        return used["home"] + used["national"] + used["international"]
    return used[roaming]


def decide(plan: Plan | FleetPlan, imsi: str, mcc: str | None, mnc: str | None,
           used: Mapping[str, int] | None) -> Decision:
    """Whether the SIM with this IMSI and plan may use data on network mcc/mnc, having used
    `used` this period (by roaming class)."""
    roaming = roaming_class(imsi, mcc, mnc)
    spent = used_against(plan, used, roaming)
    return Decision(plan.refusal(roaming, spent, mcc, mnc), roaming, plan.room(roaming, spent))


# SIMs with their status and the parts of their rate plan the network enforces (`Plan.of`).
SIM_COLUMNS = [Sim.__table__.c[name] for name in ("sid", "account_sid", "imsi", "status")] + [
    RatePlan.__table__.c[name] for name in (
        "data_enabled", "data_limit", "data_limit_strategy", "national_roaming_enabled",
        "national_roaming_data_limit", "international_roaming",
        "international_roaming_data_limit")] + [Sim.__table__.c.date_activated]
SIMS_FROM = (f"{Sim.__tablename__} LEFT OUTER JOIN {RatePlan.__tablename__} "
             f"ON {RatePlan.__tablename__}.pk = {Sim.__tablename__}.rate_plan_pk")


def plans_of(db: Session, imsis: set[str], kept: cache.IngestCache | None = None
             ) -> dict[str, tuple[str, str, Plan | FleetPlan]]:
    """IMSI → (SIM SID, account SID, plan) of the SIMs with these IMSIs: what the process keeps
    of them (`simplane.network.cache`), and the others read."""
    kept = kept or cache.cache_for(db)
    version = cache.facts_version(db)
    sims: dict[str, tuple[str, str, Plan | FleetPlan]] = kept.known_sims(version, imsis)
    if len(sims) < len(imsis):
        found = _read_sims(db, imsis - sims.keys())
        kept.keep_sims(version, found)
        sims.update(found)
    return sims


def _read_sims(db: Session, imsis: set[str]) -> dict[str, tuple[str, str, Plan | FleetPlan]]:
    """Wireless SIMs with their plans, then Super SIMs with their Fleets for the others."""
    found: dict[str, tuple[str, str, Plan | FleetPlan]] = {}
    plans: dict[tuple, Plan] = {}
    for row in BulkSql(db).select_in(SIM_COLUMNS, SIMS_FROM, [Sim.imsi], {(i,) for i in imsis},
                                     processed=False):
        roaming = row[9] if isinstance(row[9], str | None) else tuple(row[9])  # JSON
        terms = (*row[3:9], roaming, *row[10:12])
        plan = plans.get(terms)
        if plan is None:
            roaming = json.loads(roaming) if isinstance(roaming, str) else roaming
            plan = plans[terms] = Plan.of(row[3], row[4], row[5], row[6], row[7], row[8],
                                          roaming, row[10], from_driver(row[11]))
        found[row[2]] = (row[0], row[1], plan)
    if len(found) < len(imsis):  # the others may be Super SIMs
        for imsi, facts in sims_by_imsi(db, imsis - found.keys()).items():
            found[imsi] = (facts.sid, facts.account_sid, FleetPlan(facts))
    return found
