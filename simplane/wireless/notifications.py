"""KORE's RatePlan usage notifications: a request to the plan's `usage_notification_url` when a
SIM's data usage in its billing period reaches one of the plan's data limits.

KORE's Programmable Wireless spec adds `usage_notification_url`, `usage_notification_method` and
`data_limit_strategy` to the RatePlan resource and says nothing more: no request parameter sets
them, and no description, enum, default, threshold or payload is given (nor in KORE's published
documentation). What is here is simplane's reading, chosen to stay inside what the rest of the
resource defines:

- the URL and method are set through the KORE flavour with `UsageNotificationUrl` and
  `UsageNotificationMethod` (GET or POST, default POST) on create and update, named as KORE's
  other parameters are after their fields; the Twilio flavour has neither;
- the thresholds are the limits the plan already has: `data_limit` on the home network,
  `national_roaming_data_limit` and `international_roaming_data_limit` when roaming, each
  counted per billing period as the network enforces them (`simplane.network.policy`);
- a SIM is notified once per limit per billing period, when ingest counts the bytes that take
  its usage to the limit, whatever the `data_limit_strategy` (with `block` the session ends
  there; with `throttle` it goes on);
- the request is form-encoded (a GET carries it in its query), sent through the durable
  callback queue as KORE sends callbacks (`kore-signature`, `kore-idempotency-token`,
  `User-Agent: KoreProxy/1.1`), with the parameters of `notification_params`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from simplane.core import callbacks
from simplane.core.clock import utc
from simplane.core.errors import bad_request
from simplane.core.outbound import Policy
from simplane.core.params import check_url
from simplane.wireless.models import RatePlan, Sim

URL, METHOD = "UsageNotificationUrl", "UsageNotificationMethod"
METHODS = ("GET", "POST")
# The plan's field that sets the limit on a network of each roaming class.
LIMIT_FIELD = {"home": "data_limit", "national": "national_roaming_data_limit",
               "international": "international_roaming_data_limit"}


@dataclass(frozen=True, slots=True)
class Crossing:
    """A SIM's usage this billing period reached a limit of its plan (found by ingest)."""

    sim_sid: str
    account_sid: str
    roaming: str  # home | national | international
    used: int  # bytes counted this period on such networks, the limit included
    period: str  # the billing period's first second, YYYY-MM-DDTHH:MM:SS
    time: datetime  # of the event that counted the bytes


def settings_of(params: Any, policy: Policy | None, plan: RatePlan | None = None
                ) -> tuple[str | None, str | None]:
    """The usage notification URL and method a KORE-flavoured create or update gives (the
    plan's own where it gives none): an empty URL stops notifications."""
    raw: Mapping[str, list[str]] = params.raw
    url = plan.usage_notification_url if plan else None
    method = plan.usage_notification_method if plan else None
    if URL in raw:
        url = raw[URL][-1] or None
        if url is not None:
            check_url(URL, url, policy)
    if METHOD in raw:
        method = raw[METHOD][-1].strip().upper()
        if method not in METHODS:
            raise bad_request(f"Invalid {METHOD}: {raw[METHOD][-1]!r} must be GET or POST")
    if url is None:
        return None, None
    return url, method or "POST"


def kore_fields(plan: RatePlan) -> dict[str, str]:
    """What KORE's RatePlan shows beside Twilio's fields (strings in KORE's schema; empty when
    no notification URL is set)."""
    return {"data_limit_strategy": plan.data_limit_strategy,
            "usage_notification_url": plan.usage_notification_url or "",
            "usage_notification_method": plan.usage_notification_method or ""}


def notification_params(crossing: Crossing, sim_name: str | None, iccid: str, plan_sid: str,
                        strategy: str, limit_mb: int) -> dict[str, str]:
    return {
        "AccountSid": crossing.account_sid, "SimSid": crossing.sim_sid,
        "SimUniqueName": sim_name or "", "SimIccid": iccid, "RatePlanSid": plan_sid,
        "DataLimitStrategy": strategy, "Limit": LIMIT_FIELD[crossing.roaming],
        "DataLimit": str(limit_mb), "DataUsage": str(crossing.used),
        "PeriodStart": crossing.period + "Z",
        "Timestamp": utc(crossing.time).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def owe(db: Session, crossings: Sequence[Crossing], now: datetime | None = None) -> int:
    """Queue the notifications the crossings owe, in the caller's (ingest's) transaction, for
    the SIMs whose plan has a usage notification URL, due `now` (else when each crossing
    happened); returns how many."""
    rows = {row.sid: row for row in db.execute(
        select(Sim.sid, Sim.unique_name, Sim.iccid, RatePlan.sid.label("plan_sid"),
               RatePlan.usage_notification_url, RatePlan.usage_notification_method,
               RatePlan.data_limit_strategy, RatePlan.data_limit,
               RatePlan.national_roaming_data_limit, RatePlan.international_roaming_data_limit)
        .join(RatePlan, RatePlan.pk == Sim.rate_plan_pk)
        .where(Sim.sid.in_({c.sim_sid for c in crossings}),
               RatePlan.usage_notification_url.is_not(None)))}
    owed = 0
    for crossing in crossings:
        row = rows.get(crossing.sim_sid)
        if row is None:
            continue
        limit_mb = getattr(row, LIMIT_FIELD[crossing.roaming])
        callbacks.add(db, crossing.account_sid, row.usage_notification_url,
                      row.usage_notification_method,
                      notification_params(crossing, row.unique_name, row.iccid, row.plan_sid,
                                          row.data_limit_strategy, limit_mb),
                      now or crossing.time, callbacks.KORE)
        owed += 1
    return owed
