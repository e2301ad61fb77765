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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from simplane.core.clock import month_started
from simplane.supersim.access import attach_decision

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

    def room(self, roaming: str, used: int) -> int | None:
        """Bytes the SIM may still move this period on such a network (None: no cap)."""
        if self.throttle:
            return None
        limit = {"home": self.home_limit, "national": self.national_limit}.get(
            roaming, self.international_limit)
        return max(limit - used, 0)


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
