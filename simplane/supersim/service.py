"""Super SIM rules: network access profiles, fleets, SIM registration and lifecycle, commands
and eSIM profiles. No HTTP here."""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from stdnum.iso7064 import mod_97_10

from simplane.core import bulk, callbacks
from simplane.core.accounts import accounts_in_reach
from simplane.core.db import changed
from simplane.core.errors import TwilioError, bad_request, conflict, not_found
from simplane.core.lookups import check_unique_name, get_by_key, get_by_key_or_404
from simplane.core.params import ascii_digits, check_url
from simplane.core.sids import new_sid
from simplane.network import disconnects
from simplane.supersim import errors as E
from simplane.supersim import networks
from simplane.supersim.access import CONNECTED
from simplane.supersim.models import (
    EsimProfile,
    Fleet,
    IpCommand,
    NetworkAccessProfile,
    NetworkAccessProfileNetwork,
    SettingsUpdate,
    Sim,
    SmsCommand,
)

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

MAX_DATA_LIMIT_MB = 2_000_000
DEFAULT_DATA_LIMIT_MB = 1000
# A ready SIM becomes active after 250 KB of data, 5 SMS Commands (to or from it) or 3 months,
# whichever first.
READY_DATA_BYTES = 250 * 1000
READY_SMS_COMMANDS = 5

# Status changes a caller may ask for. `new` is never re-entered; `ready` only from `new`.
TRANSITIONS: dict[str, set[str]] = {
    "new": {"ready", "active", "inactive"},
    "ready": {"active", "inactive"},
    "active": {"inactive"},
    "inactive": {"active"},
    "scheduled": set(),
}


# --- lookups ---------------------------------------------------------------------------------

def get_sim(db: Session, account_sid: str, key: str) -> Sim:
    return get_by_key_or_404(db, Sim, account_sid, key, "HS", "Sim")


def get_fleet(db: Session, account_sid: str, key: str) -> Fleet:
    return get_by_key_or_404(db, Fleet, account_sid, key, "HF", "Fleet")


def get_nap(db: Session, account_sid: str, key: str) -> NetworkAccessProfile:
    return get_by_key_or_404(db, NetworkAccessProfile, account_sid, key, "HA",
                             "NetworkAccessProfile")


def param_resource(db: Session, model: Any, account_sid: str, key: str, prefix: str,
                   name: str) -> Any:
    """A resource named by a parameter (SID or unique name): a 400 naming it when unknown."""
    found = get_by_key(db, model, account_sid, key, prefix) if key else None
    if found is None:
        raise bad_request(f"Invalid {name}: no {model.__name__} {key!r} on this account")
    return found


def param_sim(db: Session, account_sid: str, key: str, name: str = "Sim") -> Sim:
    return param_resource(db, Sim, account_sid, key, "HS", name)


# --- network access profiles -----------------------------------------------------------------

def catalogue_network(sid: str, name: str = "Network") -> networks.Network:
    network = networks.get(sid)
    if network is None:
        raise bad_request(f"Invalid {name}: {sid!r} is not a Network of the catalogue")
    return network


def create_nap(db: Session, account_sid: str, params: Any, now: datetime) -> NetworkAccessProfile:
    sids = params.get("Networks", [])
    for sid in sids:
        catalogue_network(sid, "Networks")
    nap = NetworkAccessProfile(
        sid=new_sid("HA"), account_sid=account_sid,
        unique_name=check_unique_name(db, NetworkAccessProfile, account_sid,
                                      params.get("UniqueName", "")),
        date_created=now, date_updated=now)
    db.add(nap)
    db.flush()
    for sid in dict.fromkeys(sids):
        db.add(NetworkAccessProfileNetwork(nap_pk=nap.pk, network_sid=sid))
    return nap


def update_nap(db: Session, nap: NetworkAccessProfile, params: Any, now: datetime) -> None:
    if "UniqueName" in params:
        nap.unique_name = check_unique_name(db, NetworkAccessProfile, nap.account_sid,
                                            params["UniqueName"], nap.pk)
    nap.date_updated = now


def nap_network_sids(db: Session, nap: NetworkAccessProfile) -> list[str]:
    return list(db.scalars(select(NetworkAccessProfileNetwork.network_sid)
                           .where(NetworkAccessProfileNetwork.nap_pk == nap.pk)
                           .order_by(NetworkAccessProfileNetwork.network_sid)))


def add_nap_network(db: Session, nap: NetworkAccessProfile, sid: str,
                    now: datetime) -> networks.Network:
    network = catalogue_network(sid)
    exists = db.scalar(select(NetworkAccessProfileNetwork.pk).where(
        NetworkAccessProfileNetwork.nap_pk == nap.pk,
        NetworkAccessProfileNetwork.network_sid == sid))
    if exists is not None:
        raise conflict(f"Network {sid} is already in NetworkAccessProfile {nap.sid}")
    db.add(NetworkAccessProfileNetwork(nap_pk=nap.pk, network_sid=sid))
    nap.date_updated = now
    return network


def get_nap_network(db: Session, nap: NetworkAccessProfile, sid: str) -> networks.Network:
    network = networks.get(sid)
    present = network is not None and db.scalar(select(NetworkAccessProfileNetwork.pk).where(
        NetworkAccessProfileNetwork.nap_pk == nap.pk,
        NetworkAccessProfileNetwork.network_sid == sid)) is not None
    if not present:
        raise not_found("Network", sid)
    return network  # type: ignore[return-value]


def remove_nap_network(db: Session, runtime: Runtime, nap: NetworkAccessProfile, sid: str,
                       now: datetime) -> None:
    get_nap_network(db, nap, sid)
    db.query(NetworkAccessProfileNetwork).filter(
        NetworkAccessProfileNetwork.nap_pk == nap.pk,
        NetworkAccessProfileNetwork.network_sid == sid).delete()
    nap.date_updated = now
    # The sessions of the SIMs of its Fleets on that network are cut off at their gateways.
    disconnects.enforce(db, runtime, db.scalars(select(Sim.sid).join(
        Fleet, Fleet.pk == Sim.fleet_pk).where(Fleet.nap_pk == nap.pk,
                                               Sim.status.in_(CONNECTED))).all())


# --- fleets ----------------------------------------------------------------------------------

def _data_limit(value: int) -> int:
    if not 1 <= value <= MAX_DATA_LIMIT_MB:
        raise bad_request(f"Invalid DataLimit: must be between 1 and {MAX_DATA_LIMIT_MB} (MB)")
    return value


URL_FIELDS = {"IpCommandsUrl": "ip_commands_url", "SmsCommandsUrl": "sms_commands_url"}
METHOD_FIELDS = {"IpCommandsMethod": "ip_commands_method",
                 "SmsCommandsMethod": "sms_commands_method"}


def create_fleet(db: Session, account_sid: str, params: Any, now: datetime,
                 flavour: str = "twilio") -> Fleet:
    """A Fleet; its SMS and IP Commands URLs are called as the API `flavour` calls them."""
    nap = param_resource(db, NetworkAccessProfile, account_sid, params["NetworkAccessProfile"],
                         "HA", "NetworkAccessProfile")
    fleet = Fleet(
        sid=new_sid("HF"), account_sid=account_sid,
        unique_name=check_unique_name(db, Fleet, account_sid, params.get("UniqueName", "")),
        nap_pk=nap.pk, data_enabled=params.get("DataEnabled", True),
        data_limit=_data_limit(params.get("DataLimit", DEFAULT_DATA_LIMIT_MB)),
        data_metering="payg", sms_commands_enabled=params.get("SmsCommandsEnabled", True),
        sms_commands_url=params.get("SmsCommandsUrl") or None,
        sms_commands_method=params.get("SmsCommandsMethod", "POST"),
        ip_commands_url=params.get("IpCommandsUrl") or None,
        ip_commands_method=params.get("IpCommandsMethod", "POST"),
        sms_commands_flavour=flavour, ip_commands_flavour=flavour,
        date_created=now, date_updated=now)
    db.add(fleet)
    db.flush()
    return fleet


def update_fleet(db: Session, runtime: Runtime, fleet: Fleet, params: Any,
                 now: datetime, flavour: str = "twilio") -> None:
    nap = None
    if "NetworkAccessProfile" in params:
        nap = param_resource(db, NetworkAccessProfile, fleet.account_sid,
                             params["NetworkAccessProfile"], "HA", "NetworkAccessProfile")
    limit = _data_limit(params["DataLimit"]) if "DataLimit" in params else None
    if "UniqueName" in params:
        fleet.unique_name = check_unique_name(db, Fleet, fleet.account_sid, params["UniqueName"],
                                              fleet.pk)
    if nap is not None:
        fleet.nap_pk = nap.pk
    if limit is not None:
        fleet.data_limit = limit
    for name, attr in URL_FIELDS.items():
        if name in params:
            setattr(fleet, attr, params[name] or None)
            setattr(fleet, attr.replace("_url", "_flavour"), flavour)
    for name, attr in METHOD_FIELDS.items():
        if name in params:
            setattr(fleet, attr, params[name])
    fleet.date_updated = now
    if nap is not None or limit is not None:  # its SIMs' sessions may be over the new terms
        disconnects.enforce(db, runtime, db.scalars(select(Sim.sid).where(
            Sim.fleet_pk == fleet.pk, Sim.status.in_(CONNECTED))).all())


# --- SIMs ------------------------------------------------------------------------------------

def register_sim(db: Session, runtime: Runtime, account_sid: str, params: Any) -> Sim:
    """Claim a SIM of the operator's inventory with its ICCID and registration code."""
    iccid, code = params.get("Iccid", "").strip(), params.get("RegistrationCode", "").strip()
    if not iccid or not code:
        missing = "Iccid" if not iccid else "RegistrationCode"
        raise bad_request(f"Missing required parameter {missing}: a Super SIM is registered with "
                          "its ICCID and registration code", E.MISSING_REGISTRATION)
    sim = db.scalar(select(Sim).where(Sim.iccid == iccid))
    if sim is not None and sim.account_sid == account_sid:
        raise conflict(f"The Super SIM with ICCID {iccid} is already registered to this account "
                       f"as {sim.sid}", E.ALREADY_REGISTERED)
    if sim is None or sim.account_sid is not None or not secrets.compare_digest(
            sim.registration_code.encode(), code.encode()):
        raise bad_request(f"The Super SIM with ICCID {iccid} cannot be registered: check the ICCID "
                          "and the registration code", E.NOT_REGISTRABLE)
    now = runtime.clock.now()
    claimed = changed(db.execute(update(Sim).where(Sim.pk == sim.pk, Sim.account_sid.is_(None))
                                 .values(account_sid=account_sid, date_registered=now,
                                         date_updated=now)))
    if not claimed:
        raise bad_request(f"The Super SIM with ICCID {iccid} cannot be registered",
                          E.NOT_REGISTRABLE)
    db.refresh(sim)
    return sim


def update_sim(db: Session, runtime: Runtime, account_sid: str, sim: Sim, params: Any,
               flavour: str = "twilio") -> bool:
    """Apply an update whole or not at all; True when a status change was scheduled (its
    CallbackUrl hears of it as the API `flavour` sends callbacks)."""
    now = runtime.clock.now()
    new_account = params.get("AccountSid")
    if new_account is not None and new_account != sim.account_sid:
        if sim.status != "new":
            raise bad_request("Invalid AccountSid: only a Super SIM in status new can be moved "
                              "to another account")
        if new_account not in accounts_in_reach(db, account_sid):
            raise bad_request(f"Invalid AccountSid: {new_account} is not this account or one of "
                              "its subaccounts")
    else:
        new_account = None
    owner = new_account or sim.account_sid
    assert owner is not None

    fleet_pk = sim.fleet_pk
    if "Fleet" in params:
        fleet_pk = None if params["Fleet"] == "" else param_resource(
            db, Fleet, owner, params["Fleet"], "HF", "Fleet").pk
    elif new_account:
        fleet_pk = None  # the old account's fleet stays behind

    status = params.get("Status")
    target = status if status is not None and status != sim.status else None
    if sim.status == "scheduled" and status is not None:
        raise bad_request(f"Invalid Status: a status change to {sim.scheduled_status} is under "
                          "way", E.BAD_STATUS)
    if target is not None:
        allowed = TRANSITIONS.get(sim.status, set())
        if target not in allowed:
            raise bad_request(
                f"Invalid Status: a Super SIM cannot go from {sim.status} to {target}"
                + (f" (allowed: {', '.join(sorted(allowed))})" if allowed else ""), E.BAD_STATUS)
        if target in CONNECTED and fleet_pk is None:
            raise bad_request(f"Invalid Status: a Super SIM must be assigned to a Fleet before it "
                              f"can become {target}", E.BAD_STATUS)
    elif fleet_pk is None and (sim.scheduled_status or sim.status) in CONNECTED:
        raise bad_request(f"Invalid Fleet: a {sim.scheduled_status or sim.status} Super SIM "
                          "must stay in a Fleet")

    unique_name = sim.unique_name
    if "UniqueName" in params:
        unique_name = check_unique_name(db, Sim, owner, params["UniqueName"], sim.pk)
    elif new_account and sim.unique_name:
        unique_name = check_unique_name(db, Sim, new_account, sim.unique_name)

    # Every check passed: apply.
    sim.unique_name = unique_name
    sim.fleet_pk = fleet_pk
    if new_account:
        sim.account_sid = new_account
    if target is not None:
        sim.scheduled_status = target
        sim.callback_url = params.get("CallbackUrl")
        sim.callback_method = params.get("CallbackMethod", "POST")
        sim.callback_flavour = flavour
        sim.status = "scheduled"
        sim.date_status_changed = now
        runtime.worker.wake_after_commit(db)
    elif "Fleet" in params:  # another Fleet's limits and networks
        disconnects.enforce(db, runtime, [sim.sid])
    sim.date_updated = now
    return target is not None


def change_status(db: Session, runtime: Runtime, sim: Sim, status: str) -> None:
    """Move a SIM to a status (a scheduled change completing, or ready→active on its own) and
    report it to the callback owed for the change."""
    now = runtime.clock.now()
    if status == "ready" and sim.date_ready is None:
        sim.date_ready = now
    if status == "active" and sim.date_activated is None:
        sim.date_activated = now
    if status in CONNECTED and not db.scalar(select(func.count()).select_from(SettingsUpdate)
                                             .where(SettingsUpdate.sim_sid == sim.sid)):
        schedule_settings_update(db, sim, now)
    sim.status = status
    sim.scheduled_status = None
    sim.date_status_changed = now
    sim.date_updated = now
    if status == "inactive":
        sim.ip_address = None  # blocked: its data session is gone
    disconnects.enforce(db, runtime, [sim.sid])  # its gateway cuts off what it may no longer do
    assert sim.account_sid is not None
    callbacks.enqueue(db, runtime, sim.account_sid, sim.callback_url, sim.callback_method,
                      sim_callback_params(db, sim), sim.callback_flavour)
    sim.callback_url = sim.callback_method = None
    runtime.worker.wake_after_commit(db)


def sim_callback_params(db: Session, sim: Sim) -> dict[str, str]:
    fleet_sid = (db.scalar(select(Fleet.sid).where(Fleet.pk == sim.fleet_pk))
                 if sim.fleet_pk else None)
    return {"AccountSid": sim.account_sid or "", "SimSid": sim.sid,
            "SimUniqueName": sim.unique_name or "", "SimIccid": sim.iccid,
            "SimStatus": sim.status, "FleetSid": fleet_sid or ""}


# --- settings updates ------------------------------------------------------------------------

BASE_SETTINGS = {
    "name": "base-settings", "version": "1.0.0",
    "more_info": "https://twilio.com/docs/iot/supersim/settings-packages/base-settings",
}


def schedule_settings_update(db: Session, sim: Sim, now: datetime) -> SettingsUpdate:
    """The base settings package a SIM receives over the air when it first connects."""
    assert sim.account_sid is not None
    update_ = SettingsUpdate(sid=new_sid("OB"), account_sid=sim.account_sid, sim_sid=sim.sid,
                             iccid=sim.iccid, status="scheduled", packages=[BASE_SETTINGS],
                             date_completed=None, date_created=now, date_updated=now)
    db.add(update_)
    return update_


# --- SMS commands ----------------------------------------------------------------------------

MAX_SMS = 160


def _command_fleet(db: Session, sim: Sim) -> Fleet | None:
    """The Fleet of a SIM that may exchange commands (ready or active, in a Fleet), else None."""
    if sim.status not in CONNECTED or sim.fleet_pk is None:
        return None
    return db.get(Fleet, sim.fleet_pk)


def _sim_for_command(db: Session, account_sid: str, key: str) -> tuple[Sim, Fleet]:
    sim = param_sim(db, account_sid, key)
    if sim.status not in CONNECTED:
        raise bad_request(f"Invalid Sim: {sim.sid} is {sim.status}; commands can only be sent to "
                          "Super SIMs that are ready or active")
    fleet = _command_fleet(db, sim)
    if fleet is None:
        raise bad_request(f"Invalid Sim: {sim.sid} is not in a Fleet")
    return sim, fleet


def create_sms_command(db: Session, runtime: Runtime, account_sid: str, params: Any,
                       flavour: str = "twilio") -> SmsCommand:
    payload: str = params["Payload"]
    if payload == "":
        raise bad_request("Invalid Payload: must not be empty")
    if len(payload) > MAX_SMS:
        raise bad_request(f"Invalid Payload: SMS Commands are limited to {MAX_SMS} characters")
    sim, fleet = _sim_for_command(db, account_sid, params["Sim"])
    if not fleet.sms_commands_enabled:
        raise bad_request(f"Invalid Sim: the Fleet {fleet.sid} of {sim.sid} does not allow SMS "
                          "Commands (sms_commands_enabled is false)")
    now = runtime.clock.now()
    command = SmsCommand(sid=new_sid("HC"), account_sid=account_sid, sim_sid=sim.sid,
                         payload=payload, status="queued", direction="to_sim",
                         callback_url=params.get("CallbackUrl"),
                         callback_method=params.get("CallbackMethod", "POST"),
                         flavour=flavour, date_created=now, date_updated=now)
    db.add(command)
    db.flush()
    runtime.worker.wake_after_commit(db)
    return command


def receive_sms(db: Session, runtime: Runtime, sim: Sim, payload: str) -> SmsCommand | None:
    """An SMS a device sent to the SMS Commands number: a `received` command, posted to its
    Fleet's sms_commands_url. None when the SIM may not send (not connected, commands off)."""
    fleet = _command_fleet(db, sim)
    if fleet is None or not fleet.sms_commands_enabled:
        return None
    assert sim.account_sid is not None
    now = runtime.clock.now()
    command = SmsCommand(sid=new_sid("HC"), account_sid=sim.account_sid, sim_sid=sim.sid,
                         payload=payload[:MAX_SMS], status="received", direction="from_sim",
                         callback_url=None, callback_method="POST", date_created=now,
                         date_updated=now)
    db.add(command)
    db.flush()
    callbacks.enqueue(db, runtime, sim.account_sid, fleet.sms_commands_url,
                      fleet.sms_commands_method, sms_callback_params(command, sim),
                      fleet.sms_commands_flavour)
    return command


def set_command_status(db: Session, runtime: Runtime, command: SmsCommand | IpCommand,
                       status: str, sim: Sim | None, **values: Any) -> bool:
    """Move a command on if nobody else did, and report the new status to its callback."""
    model = type(command)
    now = runtime.clock.now()
    moved = changed(db.execute(
        update(model).where(model.pk == command.pk, model.status == command.status)
        .values(status=status, date_updated=now, **values)))
    if not moved:
        return False
    command.status = status
    for name, value in values.items():
        setattr(command, name, value)
    params = (sms_callback_params(command, sim) if isinstance(command, SmsCommand)
              else ip_callback_params(command, sim))
    callbacks.enqueue(db, runtime, command.account_sid, command.callback_url,
                      command.callback_method, params, command.flavour)
    return True


def move_sms_commands(db: Session, runtime: Runtime, moves: dict[int, str | None],
                      from_status: str, status: str) -> list[SmsCommand]:
    """set_command_status for many SMS Commands at once (a batch from the SMSC): those of
    `moves` (pk → SMSC message_id to store, or None) still in `from_status` move to `status`,
    each reported to its callback. Returns the commands moved."""
    if not moves:
        return []
    now = runtime.clock.now()
    commands = bulk.move_status(db, SmsCommand, moves, from_status, status, now)
    if not commands:
        return []
    reported = [c for c in commands if c.callback_url]
    if reported:
        sims = {sim.sid: sim for sim in db.scalars(
            select(Sim).where(Sim.sid.in_({c.sim_sid for c in reported})))}
        for command in reported:
            callbacks.enqueue(db, runtime, command.account_sid, command.callback_url,
                              command.callback_method,
                              sms_callback_params(command, sims.get(command.sim_sid)),
                              command.flavour)
    return commands


def sms_callback_params(command: SmsCommand, sim: Sim | None) -> dict[str, str]:
    return {"AccountSid": command.account_sid, "SmsCommandSid": command.sid,
            "SimSid": command.sim_sid, "SimUniqueName": (sim.unique_name if sim else None) or "",
            "SimIccid": sim.iccid if sim else "", "Payload": command.payload,
            "Status": command.status, "Direction": command.direction}


# --- IP commands -----------------------------------------------------------------------------

MAX_IP_PAYLOAD = 1300
IP_COMMAND_TTL = timedelta(hours=24)  # a to-SIM command not sent by then has failed


def payload_bytes(payload: str, payload_type: str) -> bytes:
    if payload_type == "binary":
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request("Invalid Payload: a binary payload must be base64") from None
    return payload.encode("utf-8")


def create_ip_command(db: Session, runtime: Runtime, account_sid: str, params: Any,
                      flavour: str = "twilio") -> IpCommand:
    payload_type = params.get("PayloadType", "text")
    payload: str = params["Payload"]
    data = payload_bytes(payload, payload_type)
    if not data:
        raise bad_request("Invalid Payload: must not be empty")
    if len(data) > MAX_IP_PAYLOAD:
        raise bad_request(f"Invalid Payload: IP Commands are limited to {MAX_IP_PAYLOAD} bytes")
    port = params["DevicePort"]
    if not 1 <= port <= 65535:
        raise bad_request("Invalid DevicePort: must be between 1 and 65535")
    sim, _fleet = _sim_for_command(db, account_sid, params["Sim"])
    now = runtime.clock.now()
    command = IpCommand(sid=new_sid("HG"), account_sid=account_sid, sim_sid=sim.sid,
                        sim_iccid=sim.iccid, status="queued", direction="to_sim",
                        device_ip=sim.ip_address, device_port=port, payload_type=payload_type,
                        payload=payload, callback_url=params.get("CallbackUrl"),
                        callback_method=params.get("CallbackMethod", "POST"),
                        flavour=flavour, date_created=now, date_updated=now)
    db.add(command)
    db.flush()
    runtime.worker.wake_after_commit(db)
    return command


def receive_ip(db: Session, runtime: Runtime, sim: Sim, source: tuple[str, int],
               data: bytes) -> IpCommand | None:
    """A datagram a device sent to the IP Commands address: a `received` command (payloads from
    a SIM are always binary), posted to its Fleet's ip_commands_url."""
    fleet = _command_fleet(db, sim)
    if fleet is None or not data or len(data) > MAX_IP_PAYLOAD:
        return None
    assert sim.account_sid is not None
    now = runtime.clock.now()
    command = IpCommand(sid=new_sid("HG"), account_sid=sim.account_sid, sim_sid=sim.sid,
                        sim_iccid=sim.iccid, status="received", direction="from_sim",
                        device_ip=source[0], device_port=source[1], payload_type="binary",
                        payload=base64.b64encode(data).decode(), callback_url=None,
                        callback_method="POST", date_created=now, date_updated=now)
    db.add(command)
    db.flush()
    callbacks.enqueue(db, runtime, sim.account_sid, fleet.ip_commands_url,
                      fleet.ip_commands_method, ip_callback_params(command, sim),
                      fleet.ip_commands_flavour)
    return command


def ip_callback_params(command: IpCommand, sim: Sim | None) -> dict[str, str]:
    return {"AccountSid": command.account_sid, "IpCommandSid": command.sid,
            "SimSid": command.sim_sid, "SimUniqueName": (sim.unique_name if sim else None) or "",
            "SimIccid": command.sim_iccid, "Status": command.status,
            "Direction": command.direction, "DeviceIp": command.device_ip or "",
            "DevicePort": str(command.device_port), "PayloadType": command.payload_type,
            "Payload": command.payload}


# --- eSIM profiles ---------------------------------------------------------------------------

SMDP_PLUS_ADDRESS = "sm-dp-plus.twilio.com"


def create_esim_profile(db: Session, runtime: Runtime, account_sid: str,
                        params: Any, flavour: str = "twilio") -> EsimProfile:
    eid = params.get("Eid") or None
    generate = params.get("GenerateMatchingId", False)
    if eid is None and not generate:
        raise bad_request("Missing required parameter Eid: give the eUICC's EID, or set "
                          "GenerateMatchingId to true")
    if eid is not None and not (ascii_digits(eid) and len(eid) == 32):
        raise bad_request(f"Invalid Eid: {eid!r} must be 32 digits")
    if params.get("CallbackUrl"):  # a plain string in the spec: the sender must still take it
        check_url("CallbackUrl", params["CallbackUrl"], runtime.outbound)
    now = runtime.clock.now()
    profile = EsimProfile(sid=new_sid("HP"), account_sid=account_sid, status="new", eid=eid,
                          generate_matching_id=generate, callback_url=params.get("CallbackUrl"),
                          callback_method=params.get("CallbackMethod", "POST"),
                          flavour=flavour, date_created=now, date_updated=now)
    db.add(profile)
    db.flush()
    runtime.worker.wake_after_commit(db)
    return profile


def esim_callback_params(profile: EsimProfile) -> dict[str, str]:
    return {"AccountSid": profile.account_sid, "EsimProfileSid": profile.sid,
            "SimSid": profile.sim_sid or "", "Iccid": profile.iccid or "",
            "Status": profile.status, "Eid": profile.eid or "",
            "MatchingId": profile.matching_id or "",
            "ActivationCode": profile.activation_code or ""}


def available_esim_profile(db: Session, eid: str, matching_id: str | None,
                           account_sid: str | None = None) -> EsimProfile:
    """The profile an eUICC may download: by matching ID, else the one reserved for its EID
    (of `account_sid`, when given)."""
    stmt = select(EsimProfile).where(EsimProfile.status == "available")
    stmt = stmt.where(EsimProfile.matching_id == matching_id) if matching_id else stmt.where(
        EsimProfile.eid == eid)
    if account_sid is not None:
        stmt = stmt.where(EsimProfile.account_sid == account_sid)
    profile = db.scalar(stmt.order_by(EsimProfile.pk).limit(1))
    if profile is None:
        raise TwilioError(404, 20404, "No available eSIM Profile for this eUICC"
                          + (f" (MatchingId {matching_id})" if matching_id else f" (Eid {eid})"))
    return profile


def downloaded_esim_profile(db: Session, eid: str, account_sid: str | None = None
                            ) -> EsimProfile:
    """The profile an eUICC downloaded and has yet to install."""
    stmt = select(EsimProfile).where(EsimProfile.status == "downloaded", EsimProfile.eid == eid)
    if account_sid is not None:
        stmt = stmt.where(EsimProfile.account_sid == account_sid)
    profile = db.scalar(stmt.order_by(EsimProfile.pk).limit(1))
    if profile is None:
        raise TwilioError(404, 20404, f"No downloaded eSIM Profile for this eUICC (Eid {eid})")
    return profile


# The SM-DP+ checks an eUICC's EID (32 digits whose last two are check digits, ISO 7064
# MOD 97-10, as GSMA SGP.29 defines them) where it first meets it: when the profile is reserved
# for that EID, or, for a profile ordered with a matching ID, when an eUICC downloads it.
EID_INVALID = ("EID_INVALID", ("The eUICC's EID {eid} fails its check digits: the SM-DP+ "
                               "refused the {step}"))


def eid_refused(profile: EsimProfile, eid: str, step: str, now: datetime) -> bool:
    """Fail the profile when the SM-DP+ refuses `eid` (True), else leave it be (False)."""
    if mod_97_10.is_valid(eid):
        return False
    profile.status = "failed"
    profile.error_code = EID_INVALID[0]
    profile.error_message = EID_INVALID[1].format(eid=eid, step=step)
    profile.date_updated = now
    return True


def esim_downloaded(db: Session, runtime: Runtime, profile: EsimProfile, eid: str) -> bool:
    """The device's eUICC downloaded an available profile from the SM-DP+; returns False when the
    download failed instead (the profile is then `failed`, with its error_code and
    error_message). The CallbackUrl hears of neither: Twilio calls it only when a profile
    goes from `reserving` to `available`."""
    if profile.status != "available":
        raise TwilioError(409, 20001, f"eSIM Profile {profile.sid} is {profile.status}, not "
                          "available")
    if profile.eid is not None and profile.eid != eid:
        raise TwilioError(409, 20001, f"eSIM Profile {profile.sid} is bound to another eUICC")
    profile.eid = eid
    now = runtime.clock.now()
    if not eid_refused(profile, eid, "download", now):
        profile.status = "downloaded"
        profile.date_updated = now
    return profile.status == "downloaded"


def esim_installed(db: Session, runtime: Runtime, profile: EsimProfile) -> None:
    """The device's eUICC installed a profile it downloaded."""
    if profile.status != "downloaded":
        raise TwilioError(409, 20001, f"eSIM Profile {profile.sid} is {profile.status}, not "
                          "downloaded")
    profile.status = "installed"
    profile.date_updated = runtime.clock.now()
