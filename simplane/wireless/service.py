"""Wireless rules: SIM lifecycle, rate plans and commands. No HTTP here."""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from simplane.core import bulk, callbacks
from simplane.core.accounts import accounts_in_reach
from simplane.core.db import changed
from simplane.core.errors import TwilioError, bad_request, conflict
from simplane.core.lookups import check_unique_name, get_by_key, get_by_key_or_404
from simplane.core.sids import new_sid
from simplane.network import disconnects
from simplane.network.models import SimState
from simplane.network.rollups import add_usage, hour_of
from simplane.wireless import errors as E
from simplane.wireless import notifications
from simplane.wireless.models import Command, RatePlan, Sim

if TYPE_CHECKING:
    from simplane.core.outbound import Policy
    from simplane.core.runtime import Runtime

MAX_LIMIT_MB = 2_000_000  # "up to 2TB"
READY_MONTHS = 3  # the longest a SIM stays ready: then it becomes active
READY_DATA_ALLOWANCE = 250_000  # bytes a ready SIM may use before it becomes active
DEACTIVATED_TO_CANCELED_AFTER = timedelta(hours=72)

# Status changes a caller may ask for; the others happen on their own (ready→active, →canceled).
TRANSITIONS: dict[str, set[str]] = {
    "new": {"ready", "active", "deactivated"},
    "ready": {"active", "suspended", "deactivated"},
    "active": {"suspended", "deactivated"},
    "suspended": {"active", "deactivated"},
    "deactivated": set(),
    "canceled": set(),
    "scheduled": set(),
    "updating": set(),
}
NEEDS_RATE_PLAN = {"ready", "active"}
CAN_TAKE_COMMANDS = {"ready", "active"}
MAX_FRIENDLY_NAME = 255  # what the friendly_name columns hold


def invalid(message: str) -> TwilioError:
    return bad_request(message, E.INVALID_VALUE)


def friendly_name(params: Any, current: str | None = None) -> str | None:
    """The FriendlyName given (else `current`), checked before anything is written."""
    if "FriendlyName" not in params:
        return current
    name = params["FriendlyName"]
    if len(name) > MAX_FRIENDLY_NAME:
        raise invalid(f"Invalid FriendlyName: longer than {MAX_FRIENDLY_NAME} characters")
    return name


# --- lookups ---------------------------------------------------------------------------------

def get_sim(db: Session, account_sid: str, key: str) -> Sim:
    return get_by_key_or_404(db, Sim, account_sid, key, "DE", "Sim")


def get_rate_plan(db: Session, account_sid: str, key: str) -> RatePlan:
    return get_by_key_or_404(db, RatePlan, account_sid, key, "WP", "RatePlan")


def rate_plan_param(db: Session, account_sid: str, key: str, name: str = "RatePlan") -> RatePlan:
    plan = get_by_key(db, RatePlan, account_sid, key, "WP")
    if plan is None:
        raise bad_request(f"Invalid {name}: no RatePlan {key!r} on this account", E.RATE_PLAN_NOT_FOUND)
    return plan


# --- rate plans ------------------------------------------------------------------------------

def _limit(params: Any, name: str, default: int) -> int:
    value = params.get(name, default)
    if not 0 <= value <= MAX_LIMIT_MB:
        raise invalid(f"Invalid {name}: must be between 0 and {MAX_LIMIT_MB} (MB)")
    return value


DATA_METERING = ("payg", "quota-1", "quota-10", "quota-50")
INTERNATIONAL_SERVICES = ("data", "messaging")


def create_rate_plan(db: Session, account_sid: str, params: Any, now: datetime,
                     flavour: str = "twilio", policy: Policy | None = None) -> RatePlan:
    """A rate plan. Through KORE's flavour, as KORE's spec has it, DataLimitStrategy is no
    parameter (the plan blocks at its limits) and the usage notification URL and method may be
    given (`simplane.wireless.notifications`)."""
    metering = params.get("DataMetering", "payg")
    if metering not in DATA_METERING:
        raise invalid(f"Invalid DataMetering: {metering!r} is not one of {', '.join(DATA_METERING)}")
    roaming = params.get("InternationalRoaming", [])
    for service in roaming:
        if service not in INTERNATIONAL_SERVICES:
            raise invalid(f"Invalid InternationalRoaming: {service!r} is not data or messaging")
    data_limit = _limit(params, "DataLimit", 1000)
    kore = flavour == "kore"
    strategy = "block" if kore else params.get("DataLimitStrategy", "block")
    url, method = notifications.settings_of(params, policy) if kore else (None, None)
    plan = RatePlan(
        sid=new_sid("WP"), account_sid=account_sid,
        unique_name=check_unique_name(db, RatePlan, account_sid, params.get("UniqueName", ""),
                                      code=E.INVALID_VALUE),
        friendly_name=friendly_name(params),
        data_enabled=params.get("DataEnabled", True), data_metering=metering,
        data_limit=data_limit, data_limit_strategy=strategy,
        usage_notification_url=url, usage_notification_method=method,
        messaging_enabled=params.get("MessagingEnabled", True),
        voice_enabled=params.get("VoiceEnabled", False),
        national_roaming_enabled=params.get("NationalRoamingEnabled", True),
        national_roaming_data_limit=_limit(params, "NationalRoamingDataLimit", data_limit),
        international_roaming=sorted(set(roaming)),
        international_roaming_data_limit=_limit(params, "InternationalRoamingDataLimit", data_limit),
        date_created=now, date_updated=now,
    )
    db.add(plan)
    db.flush()
    return plan


def update_rate_plan(db: Session, plan: RatePlan, params: Any, now: datetime,
                     flavour: str = "twilio", policy: Policy | None = None) -> RatePlan:
    name = friendly_name(params, plan.friendly_name)
    url, method = (notifications.settings_of(params, policy, plan) if flavour == "kore"
                   else (plan.usage_notification_url, plan.usage_notification_method))
    if "UniqueName" in params:
        plan.unique_name = check_unique_name(db, RatePlan, plan.account_sid, params["UniqueName"],
                                             plan.pk, E.INVALID_VALUE)
    plan.friendly_name = name
    plan.usage_notification_url, plan.usage_notification_method = url, method
    plan.date_updated = now
    return plan


def delete_rate_plan(db: Session, plan: RatePlan) -> None:
    in_use = db.scalar(select(func.count()).select_from(Sim).where(Sim.rate_plan_pk == plan.pk))
    if in_use:
        raise conflict(f"RatePlan {plan.sid} is assigned to {in_use} SIM(s); move them to another "
                       "rate plan before deleting it", E.INVALID_VALUE)
    db.delete(plan)


# --- SIMs ------------------------------------------------------------------------------------

SIM_URL_FIELDS = {
    "CommandsCallbackUrl": "commands_callback_url", "SmsFallbackUrl": "sms_fallback_url",
    "SmsUrl": "sms_url", "VoiceFallbackUrl": "voice_fallback_url", "VoiceUrl": "voice_url",
}
SIM_METHOD_FIELDS = {
    "CommandsCallbackMethod": "commands_callback_method", "SmsFallbackMethod": "sms_fallback_method",
    "SmsMethod": "sms_method", "VoiceFallbackMethod": "voice_fallback_method",
    "VoiceMethod": "voice_method",
}


def update_sim(db: Session, runtime: Runtime, account_sid: str, sim: Sim, params: Any,
               flavour: str = "twilio") -> Sim:
    """Apply an update whole or not at all: every check runs before the first change. The
    callback URLs it sets are called as the API `flavour` calls them."""
    now = runtime.clock.now()
    status = params.get("Status")
    if status is not None and "ResetStatus" in params:
        raise bad_request("Status and ResetStatus cannot be updated together", E.CONFLICTING)

    new_account = params.get("AccountSid")
    if new_account is not None and new_account != sim.account_sid:
        if sim.status != "new":
            raise bad_request("Invalid AccountSid: only a SIM in status new can be moved",
                              E.NOT_PERMITTED)
        if new_account not in accounts_in_reach(db, account_sid):
            raise bad_request(f"Invalid AccountSid: {new_account} is not this account or one of its "
                              "subaccounts", E.NOT_PERMITTED)
    else:
        new_account = None

    # A SIM's rate plan is one of its own account's: a moved SIM leaves its plan behind.
    plan_given = "RatePlan" in params
    plan = sim_plan = None
    if plan_given and params["RatePlan"] != "":
        plan = rate_plan_param(db, new_account or account_sid, params["RatePlan"])
    elif not plan_given and sim.rate_plan_pk is not None and new_account is None:
        sim_plan = sim.rate_plan_pk
    removing_plan = plan_given and params["RatePlan"] == ""
    target_status = status if status is not None and status != sim.status else None

    if removing_plan and target_status == "suspended":
        raise bad_request("A SIM cannot be suspended while its rate plan is removed", E.CONFLICTING)
    if removing_plan and (target_status or sim.status) in NEEDS_RATE_PLAN:
        raise invalid(f"Invalid RatePlan: a {target_status or sim.status} SIM needs a rate plan")
    if target_status is not None:
        allowed = TRANSITIONS.get(sim.status, set())
        if target_status not in allowed:
            raise bad_request(
                f"Invalid Status: a SIM cannot go from {sim.status} to {target_status}"
                + (f" (allowed: {', '.join(sorted(allowed))})" if allowed else ""), E.BAD_TRANSITION)
        if target_status in NEEDS_RATE_PLAN and plan is None and sim_plan is None:
            raise bad_request(f"Invalid Status: a SIM needs a rate plan to become {target_status}",
                              E.INCOMPLETE)
    if "ResetStatus" in params and sim.status not in ("ready", "active"):
        raise bad_request(f"Invalid ResetStatus: a {sim.status} SIM cannot be reset", E.BAD_TRANSITION)

    friendly = friendly_name(params, sim.friendly_name)
    unique_name = sim.unique_name
    if "UniqueName" in params:
        unique_name = check_unique_name(db, Sim, new_account or sim.account_sid,
                                        params["UniqueName"], sim.pk, E.INVALID_VALUE)
    elif new_account and sim.unique_name:
        unique_name = check_unique_name(db, Sim, new_account, sim.unique_name,
                                        code=E.INVALID_VALUE)

    # Every check passed: apply.
    sim.unique_name, sim.friendly_name = unique_name, friendly
    for name, attr in SIM_URL_FIELDS.items():
        if name in params:
            setattr(sim, attr, params[name] or None)
    if "CommandsCallbackUrl" in params:
        sim.commands_callback_flavour = flavour
    for name, attr in SIM_METHOD_FIELDS.items():
        if name in params:
            setattr(sim, attr, params[name])
    if plan_given:
        sim.rate_plan_pk = plan.pk if plan else None
    if new_account:
        sim.account_sid = new_account
        if plan is None and sim.rate_plan_pk is not None:  # the old account's plan stays behind
            sim.rate_plan_pk = None
    if "ResetStatus" in params:
        sim.reset_status = "resetting"
        runtime.worker.wake_after_commit(db)
    if target_status is not None:
        change_status(db, runtime, sim, target_status, params.get("CallbackUrl"),
                      params.get("CallbackMethod", "POST"), flavour)
    if "ResetStatus" in params:  # the gateway ends its sessions: the device attaches afresh
        disconnects.reset(db, runtime, [sim.sid])
    elif target_status is not None or plan_given or new_account:
        disconnects.enforce(db, runtime, [sim.sid])  # cut off what it may no longer do
    sim.date_updated = now
    return sim


def change_status(db: Session, runtime: Runtime, sim: Sim, status: str, callback_url: str | None,
                  callback_method: str | None, flavour: str = "twilio") -> None:
    """Move a SIM to a status and owe its callback; a change with a second stage
    (ready→active, deactivated→canceled) keeps the callback for that stage."""
    now = runtime.clock.now()
    sim.status = status
    sim.date_status_changed = now
    sim.date_updated = now
    if status == "active" and sim.date_activated is None:
        sim.date_activated = now
    if status in ("ready", "deactivated"):
        sim.status_callback_url, sim.status_callback_method = callback_url, callback_method
        sim.status_callback_flavour = flavour
    elif status not in ("active", "canceled") or not sim.status_callback_url:
        sim.status_callback_url = sim.status_callback_method = None
    callbacks.enqueue(db, runtime, sim.account_sid, callback_url, callback_method,
                      sim_callback_params(sim), flavour)
    if status in ("active", "canceled"):
        sim.status_callback_url = sim.status_callback_method = None
    runtime.worker.wake_after_commit(db)


def sim_callback_params(sim: Sim) -> dict[str, str]:
    return {"AccountSid": sim.account_sid, "SimSid": sim.sid, "SimUniqueName": sim.unique_name or "",
            "SimIccid": sim.iccid, "SimStatus": sim.status}


def delete_sim(db: Session, sim: Sim) -> None:
    db.delete(sim)


# --- commands --------------------------------------------------------------------------------

MAX_TEXT = 160
MAX_BINARY = 140
INCLUDE_SID = ("none", "start", "end")
SID_LENGTH = 34


def create_command(db: Session, runtime: Runtime, account_sid: str, params: Any,
                   flavour: str = "twilio") -> Command:
    """A to-SIM command; its callback is sent as the API `flavour` that created it sends them."""
    if "Sim" not in params or params["Sim"] == "":
        raise bad_request("Missing required parameter Sim in the post body")
    sim = get_by_key(db, Sim, account_sid, params["Sim"], "DE")
    if sim is None:
        raise bad_request(f"Invalid Sim: no SIM {params['Sim']!r} on this account", E.SIM_NOT_FOUND)
    mode = params.get("CommandMode", "text")
    include_sid = params.get("IncludeSid", "none")
    if include_sid not in INCLUDE_SID:
        raise invalid(f"Invalid IncludeSid: {include_sid!r} is not one of none, start, end")
    body: str = params["Command"]
    if body == "":
        raise invalid("Invalid Command: must not be empty")
    if mode == "text":
        room = MAX_TEXT - (SID_LENGTH + 1 if include_sid != "none" else 0)
        if len(body) > room:
            raise invalid(f"Invalid Command: text commands are limited to {room} characters"
                          + (" when IncludeSid adds the SID" if include_sid != "none" else ""))
    else:
        if include_sid != "none":
            raise invalid("Invalid IncludeSid: the SID can only be included in text commands")
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise invalid("Invalid Command: binary commands must be base64") from None
        if len(raw) > MAX_BINARY:
            raise invalid(f"Invalid Command: binary commands are limited to {MAX_BINARY} bytes")
    if sim.status not in CAN_TAKE_COMMANDS:
        raise bad_request(f"Invalid Sim: {sim.sid} is {sim.status}; commands can only be sent to "
                          "SIMs that are ready or active", E.INCOMPLETE)
    plan = db.get(RatePlan, sim.rate_plan_pk) if sim.rate_plan_pk else None
    if plan is None or not plan.messaging_enabled:
        raise bad_request(f"Invalid Sim: the rate plan of {sim.sid} does not allow commands "
                          "(messaging_enabled is false)", E.NOT_PERMITTED)
    sid = new_sid("DC")
    if include_sid == "start":
        body = f"{sid} {body}"
    elif include_sid == "end":
        body = f"{body} {sid}"
    now = runtime.clock.now()
    command = Command(
        sid=sid, account_sid=account_sid, sim_sid=sim.sid, command=body, command_mode=mode,
        transport="sms", delivery_receipt_requested=params.get("DeliveryReceiptRequested", True),
        status="queued", direction="to_sim", callback_url=params.get("CallbackUrl"),
        callback_method=params.get("CallbackMethod", "POST"), flavour=flavour,
        date_created=now, date_updated=now,
    )
    db.add(command)
    db.flush()
    runtime.worker.wake_after_commit(db)
    return command


def set_command_status(db: Session, runtime: Runtime, command: Command, status: str,
                       final: bool) -> bool:
    """Move a command on if nobody else did; on its final status, owe its callback."""
    now = runtime.clock.now()
    moved = changed(db.execute(update(Command).where(Command.pk == command.pk,
                                                     Command.status == command.status)
                               .values(status=status, date_updated=now)))
    if not moved:
        return False
    command.status = status
    if status == "sent":
        count_command(db, command.sim_sid, command.account_sid, "to_sim", now)
    if final:
        sim_name = db.scalar(select(Sim.unique_name).where(Sim.sid == command.sim_sid))
        callbacks.enqueue(db, runtime, command.account_sid, command.callback_url,
                          command.callback_method, command_callback_params(command, sim_name),
                          command.flavour)
    return True


def move_commands(db: Session, runtime: Runtime, moves: dict[int, str | None], from_status: str,
                  status: str) -> list[Command]:
    """set_command_status for many to-SIM commands at once (a batch from the SMSC): those of
    `moves` (pk → SMSC message_id to store, or None) still in `from_status` move to `status`;
    `sent` is counted, and a final status (`sent` without a receipt asked for, `delivered`,
    `failed`) owes the callback. Returns the commands moved."""
    if not moves:
        return []
    now = runtime.clock.now()
    commands = bulk.move_status(db, Command, moves, from_status, status, now)
    if not commands:
        return []
    sims = {c.sim_sid for c in commands}
    if status == "sent":
        where = {sid: (roaming, country) for sid, roaming, country in db.execute(
            select(SimState.sim_sid, SimState.roaming, SimState.country)
            .where(SimState.sim_sid.in_(sims)))}
        usage: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for command in commands:
            roaming, country = where.get(command.sim_sid, ("home", ""))
            usage[(command.sim_sid, command.account_sid, hour_of(now), roaming, country)][3] += 1
        add_usage(db, dict(usage))
    final = [c for c in commands if c.callback_url and (
        status != "sent" or not c.delivery_receipt_requested)]
    if final:
        names = dict(db.execute(select(Sim.sid, Sim.unique_name).where(Sim.sid.in_(sims))).all())
        for command in final:
            callbacks.enqueue(db, runtime, command.account_sid, command.callback_url,
                              command.callback_method,
                              command_callback_params(command, names.get(command.sim_sid)),
                              command.flavour)
    return commands


def receive_from_sim(db: Session, runtime: Runtime, sim: Sim, body: str, mode: str = "text",
                     when: datetime | None = None) -> Command:
    """A command the device sent (at `when`, default now): recorded as `received`, counted, and
    posted (signed) to the SIM's `commands_callback_url`."""
    now = when or runtime.clock.now()
    command = Command(
        sid=new_sid("DC"), account_sid=sim.account_sid, sim_sid=sim.sid, command=body,
        command_mode=mode, transport="sms", delivery_receipt_requested=False, status="received",
        direction="from_sim", callback_url=None, callback_method="POST", date_created=now,
        date_updated=now)
    db.add(command)
    db.flush()
    count_command(db, sim.sid, sim.account_sid, "from_sim", now)
    callbacks.enqueue(db, runtime, sim.account_sid, sim.commands_callback_url,
                      sim.commands_callback_method or "POST",
                      command_callback_params(command, sim.unique_name),
                      sim.commands_callback_flavour)
    return command


def count_command(db: Session, sim_sid: str, account_sid: str, direction: str,
                  when: datetime) -> None:
    """Add a command to the hourly rollups, on the network the SIM is attached to."""
    where = db.execute(select(SimState.roaming, SimState.country)
                       .where(SimState.sim_sid == sim_sid)).first()
    roaming, country = where if where else ("home", "")
    counts = [0, 0, 1, 0] if direction == "from_sim" else [0, 0, 0, 1]
    add_usage(db, {(sim_sid, account_sid, hour_of(when), roaming, country): counts})


def command_callback_params(command: Command, sim_unique_name: str | None) -> dict[str, str]:
    return {
        "AccountSid": command.account_sid, "CommandSid": command.sid, "SimSid": command.sim_sid,
        "SimUniqueName": sim_unique_name or "", "Command": command.command,
        "CommandMode": command.command_mode, "CommandStatus": command.status,
        "Direction": command.direction, "Transport": command.transport,
        "DeliveryReceiptRequested": str(command.delivery_receipt_requested).lower(),
    }

