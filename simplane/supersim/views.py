"""Super SIM v1 routes and representations, one handler per operation of the spec."""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import datetime
from typing import Any

from sqlalchemy import select

from simplane.core.api import Ctx, ProductAPI, json_response
from simplane.core.clock import iso
from simplane.core.errors import bad_request, not_found
from simplane.core.lookups import get_by_key, get_by_sid
from simplane.core.paging import empty_page, page_of_list, paginate
from simplane.core.params import ascii_digits, check_text
from simplane.network.rollups import usage_window
from simplane.supersim import billing, networks, service
from simplane.supersim import errors as E
from simplane.supersim import usage as usage_mod
from simplane.supersim.models import (
    EsimProfile,
    Fleet,
    IpCommand,
    NetworkAccessProfile,
    SettingsUpdate,
    Sim,
    SmsCommand,
)

api = ProductAPI("supersim")


# --- representations -------------------------------------------------------------------------

def network_json(ctx: Ctx, network: networks.Network) -> dict:
    return {"sid": network.sid, "friendly_name": network.friendly_name,
            "url": ctx.url(f"/Networks/{network.sid}"), "iso_country": network.iso_country,
            "identifiers": network.identifiers_json()}


def nap_network_json(ctx: Ctx, nap: NetworkAccessProfile, network: networks.Network) -> dict:
    return {"sid": network.sid, "network_access_profile_sid": nap.sid,
            "friendly_name": network.friendly_name, "iso_country": network.iso_country,
            "identifiers": network.identifiers_json(),
            "url": ctx.url(f"/NetworkAccessProfiles/{nap.sid}/Networks/{network.sid}")}


def nap_json(ctx: Ctx, nap: NetworkAccessProfile) -> dict:
    url = ctx.url(f"/NetworkAccessProfiles/{nap.sid}")
    return {"sid": nap.sid, "unique_name": nap.unique_name, "account_sid": nap.account_sid,
            "date_created": iso(nap.date_created), "date_updated": iso(nap.date_updated),
            "url": url, "links": {"networks": f"{url}/Networks"}}


def fleet_json(ctx: Ctx, fleet: Fleet, nap_sid: str) -> dict:
    return {
        "account_sid": fleet.account_sid, "sid": fleet.sid, "unique_name": fleet.unique_name,
        "date_created": iso(fleet.date_created), "date_updated": iso(fleet.date_updated),
        "url": ctx.url(f"/Fleets/{fleet.sid}"), "data_enabled": fleet.data_enabled,
        "data_limit": fleet.data_limit, "data_metering": fleet.data_metering,
        "sms_commands_enabled": fleet.sms_commands_enabled,
        "sms_commands_url": fleet.sms_commands_url,
        "sms_commands_method": fleet.sms_commands_method, "network_access_profile_sid": nap_sid,
        "ip_commands_url": fleet.ip_commands_url, "ip_commands_method": fleet.ip_commands_method,
    }


def sim_json(ctx: Ctx, sim: Sim, fleet_sid: str | None) -> dict:
    url = ctx.url(f"/Sims/{sim.sid}")
    return {"sid": sim.sid, "unique_name": sim.unique_name, "account_sid": sim.account_sid,
            "iccid": sim.iccid, "status": sim.status, "fleet_sid": fleet_sid,
            "date_created": iso(sim.date_created), "date_updated": iso(sim.date_updated),
            "url": url, "links": {"billing_periods": f"{url}/BillingPeriods",
                                  "sim_ip_addresses": f"{url}/IpAddresses"}}


def sms_command_json(ctx: Ctx, c: SmsCommand) -> dict:
    return {"sid": c.sid, "account_sid": c.account_sid, "sim_sid": c.sim_sid,
            "payload": c.payload, "status": c.status, "direction": c.direction,
            "date_created": iso(c.date_created), "date_updated": iso(c.date_updated),
            "url": ctx.url(f"/SmsCommands/{c.sid}")}


def ip_command_json(ctx: Ctx, c: IpCommand) -> dict:
    return {"sid": c.sid, "account_sid": c.account_sid, "sim_sid": c.sim_sid,
            "sim_iccid": c.sim_iccid, "status": c.status, "direction": c.direction,
            "device_ip": c.device_ip, "device_port": c.device_port,
            "payload_type": c.payload_type, "payload": c.payload,
            "date_created": iso(c.date_created), "date_updated": iso(c.date_updated),
            "url": ctx.url(f"/IpCommands/{c.sid}")}


def settings_update_json(u: SettingsUpdate) -> dict:
    return {"sid": u.sid, "iccid": u.iccid, "sim_sid": u.sim_sid, "status": u.status,
            "packages": list(u.packages), "date_completed": iso(u.date_completed),
            "date_created": iso(u.date_created), "date_updated": iso(u.date_updated)}


def esim_profile_json(ctx: Ctx, p: EsimProfile) -> dict:
    return {"sid": p.sid, "account_sid": p.account_sid, "iccid": p.iccid, "sim_sid": p.sim_sid,
            "status": p.status, "eid": p.eid, "smdp_plus_address": p.smdp_plus_address,
            "matching_id": p.matching_id, "activation_code": p.activation_code,
            "error_code": p.error_code, "error_message": p.error_message,
            "date_created": iso(p.date_created), "date_updated": iso(p.date_updated),
            "url": ctx.url(f"/ESimProfiles/{p.sid}")}


def _sids(ctx: Ctx, model: Any, pks: set[int]) -> dict[int, str]:
    if not pks:
        return {}
    return dict(ctx.db.execute(select(model.pk, model.sid).where(model.pk.in_(pks))).all())


# --- Networks --------------------------------------------------------------------------------

@api.operation("FetchNetwork")
def fetch_network(ctx: Ctx) -> dict:
    network = networks.get(ctx.path["Sid"])
    if network is None:
        raise not_found("Network", ctx.path["Sid"])
    return network_json(ctx, network)


@api.operation("ListNetwork")
def list_networks(ctx: Ctx) -> dict:
    p = ctx.params
    found = networks.search(p.get("IsoCountry"), p.get("Mcc"), p.get("Mnc"))
    return page_of_list(ctx, found, lambda n: network_json(ctx, n))


# --- NetworkAccessProfiles -------------------------------------------------------------------

@api.operation("CreateNetworkAccessProfile")
def create_nap(ctx: Ctx) -> dict:
    return nap_json(ctx, service.create_nap(ctx.db, ctx.account_sid, ctx.params, ctx.now()))


@api.operation("FetchNetworkAccessProfile")
def fetch_nap(ctx: Ctx) -> dict:
    return nap_json(ctx, service.get_nap(ctx.db, ctx.account_sid, ctx.path["Sid"]))


@api.operation("ListNetworkAccessProfile")
def list_naps(ctx: Ctx) -> dict:
    stmt = select(NetworkAccessProfile).where(NetworkAccessProfile.account_sid == ctx.account_sid)
    return paginate(ctx, stmt, NetworkAccessProfile.pk, lambda nap: nap_json(ctx, nap))


@api.operation("UpdateNetworkAccessProfile")
def update_nap(ctx: Ctx) -> dict:
    nap = service.get_nap(ctx.db, ctx.account_sid, ctx.path["Sid"])
    service.update_nap(ctx.db, nap, ctx.params, ctx.now())
    return nap_json(ctx, nap)


@api.operation("ListNetworkAccessProfileNetwork")
def list_nap_networks(ctx: Ctx) -> dict:
    nap = service.get_nap(ctx.db, ctx.account_sid, ctx.path["NetworkAccessProfileSid"])
    found = [n for n in map(networks.get, service.nap_network_sids(ctx.db, nap)) if n]
    return page_of_list(ctx, found, lambda n: nap_network_json(ctx, nap, n))


@api.operation("CreateNetworkAccessProfileNetwork")
def add_nap_network(ctx: Ctx) -> dict:
    nap = service.get_nap(ctx.db, ctx.account_sid, ctx.path["NetworkAccessProfileSid"])
    network = service.add_nap_network(ctx.db, nap, ctx.params["Network"], ctx.now())
    return nap_network_json(ctx, nap, network)


@api.operation("FetchNetworkAccessProfileNetwork")
def fetch_nap_network(ctx: Ctx) -> dict:
    nap = service.get_nap(ctx.db, ctx.account_sid, ctx.path["NetworkAccessProfileSid"])
    return nap_network_json(ctx, nap, service.get_nap_network(ctx.db, nap, ctx.path["Sid"]))


@api.operation("DeleteNetworkAccessProfileNetwork")
def remove_nap_network(ctx: Ctx) -> None:
    nap = service.get_nap(ctx.db, ctx.account_sid, ctx.path["NetworkAccessProfileSid"])
    service.remove_nap_network(ctx.db, ctx.runtime, nap, ctx.path["Sid"], ctx.now())


# --- Fleets ----------------------------------------------------------------------------------

def _fleet_json(ctx: Ctx, fleet: Fleet) -> dict:
    nap_sid = ctx.db.scalar(select(NetworkAccessProfile.sid)
                            .where(NetworkAccessProfile.pk == fleet.nap_pk))
    return fleet_json(ctx, fleet, nap_sid)  # type: ignore[arg-type]


@api.operation("CreateFleet")
def create_fleet(ctx: Ctx) -> dict:
    return _fleet_json(ctx, service.create_fleet(ctx.db, ctx.account_sid, ctx.params, ctx.now(),
                                                 ctx.flavour))


@api.operation("FetchFleet")
def fetch_fleet(ctx: Ctx) -> dict:
    return _fleet_json(ctx, service.get_fleet(ctx.db, ctx.account_sid, ctx.path["Sid"]))


@api.operation("ListFleet")
def list_fleets(ctx: Ctx) -> dict:
    stmt = select(Fleet).where(Fleet.account_sid == ctx.account_sid)
    if "NetworkAccessProfile" in ctx.params:
        nap = get_by_key(ctx.db, NetworkAccessProfile, ctx.account_sid,
                         ctx.params["NetworkAccessProfile"], "HA")
        if nap is None:
            return empty_page(ctx)
        stmt = stmt.where(Fleet.nap_pk == nap.pk)
    naps: dict[int, str] = {}

    def render(fleet: Fleet) -> dict:
        if fleet.nap_pk not in naps:
            naps.update(_sids(ctx, NetworkAccessProfile, {fleet.nap_pk}))
        return fleet_json(ctx, fleet, naps[fleet.nap_pk])

    return paginate(ctx, stmt, Fleet.pk, render)


@api.operation("UpdateFleet")
def update_fleet(ctx: Ctx) -> dict:
    fleet = service.get_fleet(ctx.db, ctx.account_sid, ctx.path["Sid"])
    service.update_fleet(ctx.db, ctx.runtime, fleet, ctx.params, ctx.now(), ctx.flavour)
    return _fleet_json(ctx, fleet)


# --- Sims ------------------------------------------------------------------------------------

def _sim_json(ctx: Ctx, sim: Sim) -> dict:
    return sim_json(ctx, sim, _sids(ctx, Fleet, {sim.fleet_pk}).get(sim.fleet_pk)
                    if sim.fleet_pk else None)


@api.operation("CreateSim", missing_code=E.MISSING_REGISTRATION)
def register_sim(ctx: Ctx) -> dict:
    return _sim_json(ctx, service.register_sim(ctx.db, ctx.runtime, ctx.account_sid, ctx.params))


@api.operation("FetchSim")
def fetch_sim(ctx: Ctx) -> dict:
    return _sim_json(ctx, service.get_sim(ctx.db, ctx.account_sid, ctx.path["Sid"]))


@api.operation("ListSim")
def list_sims(ctx: Ctx) -> dict:
    p = ctx.params
    stmt = select(Sim).where(Sim.account_sid == ctx.account_sid)
    if "Status" in p:
        stmt = stmt.where(Sim.status == p["Status"])
    if "Iccid" in p:
        stmt = stmt.where(Sim.iccid == p["Iccid"])
    if "Fleet" in p:
        fleet = get_by_key(ctx.db, Fleet, ctx.account_sid, p["Fleet"], "HF")
        if fleet is None:
            return empty_page(ctx)
        stmt = stmt.where(Sim.fleet_pk == fleet.pk)
    fleets: dict[int, str] = {}

    def render(sim: Sim) -> dict:
        if sim.fleet_pk is not None and sim.fleet_pk not in fleets:
            fleets.update(_sids(ctx, Fleet, {sim.fleet_pk}))
        return sim_json(ctx, sim, fleets.get(sim.fleet_pk))  # type: ignore[arg-type]

    return paginate(ctx, stmt, Sim.pk, render)


@api.operation("UpdateSim")
def update_sim(ctx: Ctx) -> Any:
    sim = service.get_sim(ctx.db, ctx.account_sid, ctx.path["Sid"])
    scheduled = service.update_sim(ctx.db, ctx.runtime, ctx.account_sid, sim, ctx.params,
                                   ctx.flavour)
    ctx.db.flush()
    body = _sim_json(ctx, sim)
    return json_response(body, 202) if scheduled else body


@api.operation("ListSimIpAddress")
def list_sim_ip_addresses(ctx: Ctx) -> dict:
    sim = service.get_sim(ctx.db, ctx.account_sid, ctx.path["SimSid"])
    found = [sim.ip_address] if sim.ip_address and sim.status in service.CONNECTED else []
    return page_of_list(ctx, found, lambda ip: {
        "ip_address": ip, "ip_address_version": f"IPv{ipaddress.ip_address(ip).version}"})


# --- BillingPeriods --------------------------------------------------------------------------

@api.operation("ListBillingPeriod")
def list_billing_periods(ctx: Ctx) -> dict:
    sim = service.get_sim(ctx.db, ctx.account_sid, ctx.path["SimSid"])

    def render(period: tuple[str, datetime, datetime]) -> dict:
        kind, start, end = period
        sid = "HB" + hashlib.sha256(f"{sim.sid}:{kind}:{iso(start)}".encode()).hexdigest()[:32]
        return {"sid": sid, "account_sid": sim.account_sid, "sim_sid": sim.sid,
                "start_time": iso(start), "end_time": iso(end), "period_type": kind,
                "date_created": iso(start), "date_updated": iso(start)}

    return page_of_list(ctx, billing.periods(sim.date_ready, sim.date_activated, ctx.now()), render)


# --- SmsCommands -----------------------------------------------------------------------------

def _sim_filter(ctx: Ctx, stmt: Any, model: Any) -> Any:
    """Commands of the SIM named by the Sim parameter (SID or unique name), or of none."""
    if "Sim" not in ctx.params:
        return stmt
    sim = get_by_key(ctx.db, Sim, ctx.account_sid, ctx.params["Sim"], "HS")
    return stmt.where(model.sim_sid == (sim.sid if sim else ctx.params["Sim"]))


@api.operation("CreateSmsCommand")
def create_sms_command(ctx: Ctx) -> dict:
    return sms_command_json(ctx, service.create_sms_command(ctx.db, ctx.runtime, ctx.account_sid,
                                                            ctx.params, ctx.flavour))


@api.operation("FetchSmsCommand")
def fetch_sms_command(ctx: Ctx) -> dict:
    return sms_command_json(ctx, get_by_sid(ctx.db, SmsCommand, ctx.account_sid, ctx.path["Sid"],
                                            "HC", "SmsCommand"))


@api.operation("ListSmsCommand")
def list_sms_commands(ctx: Ctx) -> dict:
    stmt = _sim_filter(ctx, select(SmsCommand).where(SmsCommand.account_sid == ctx.account_sid),
                       SmsCommand)
    for name, column in (("Status", SmsCommand.status), ("Direction", SmsCommand.direction)):
        if name in ctx.params:
            stmt = stmt.where(column == ctx.params[name])
    return paginate(ctx, stmt, SmsCommand.pk, lambda c: sms_command_json(ctx, c), descending=True)


# --- IpCommands ------------------------------------------------------------------------------

@api.operation("CreateIpCommand")
def create_ip_command(ctx: Ctx) -> dict:
    return ip_command_json(ctx, service.create_ip_command(ctx.db, ctx.runtime, ctx.account_sid,
                                                          ctx.params, ctx.flavour))


@api.operation("FetchIpCommand")
def fetch_ip_command(ctx: Ctx) -> dict:
    return ip_command_json(ctx, get_by_sid(ctx.db, IpCommand, ctx.account_sid, ctx.path["Sid"],
                                           "HG", "IpCommand"))


@api.operation("ListIpCommand")
def list_ip_commands(ctx: Ctx) -> dict:
    stmt = _sim_filter(ctx, select(IpCommand).where(IpCommand.account_sid == ctx.account_sid),
                       IpCommand)
    for name, column in (("SimIccid", IpCommand.sim_iccid), ("Status", IpCommand.status),
                         ("Direction", IpCommand.direction)):
        if name in ctx.params:
            stmt = stmt.where(column == ctx.params[name])
    return paginate(ctx, stmt, IpCommand.pk, lambda c: ip_command_json(ctx, c), descending=True)


# --- SettingsUpdates -------------------------------------------------------------------------

@api.operation("ListSettingsUpdate")
def list_settings_updates(ctx: Ctx) -> dict:
    stmt = _sim_filter(ctx, select(SettingsUpdate).where(
        SettingsUpdate.account_sid == ctx.account_sid), SettingsUpdate)
    if "Status" in ctx.params:
        stmt = stmt.where(SettingsUpdate.status == ctx.params["Status"])
    return paginate(ctx, stmt, SettingsUpdate.pk, settings_update_json, descending=True)


# --- ESimProfiles ----------------------------------------------------------------------------

@api.operation("CreateEsimProfile")
def create_esim_profile(ctx: Ctx) -> dict:
    return esim_profile_json(ctx, service.create_esim_profile(ctx.db, ctx.runtime,
                                                              ctx.account_sid, ctx.params,
                                                              ctx.flavour))


@api.operation("FetchEsimProfile")
def fetch_esim_profile(ctx: Ctx) -> dict:
    return esim_profile_json(ctx, get_by_sid(ctx.db, EsimProfile, ctx.account_sid,
                                             ctx.path["Sid"], "HP", "EsimProfile"))


@api.operation("ListEsimProfile")
def list_esim_profiles(ctx: Ctx) -> dict:
    p = ctx.params
    stmt = select(EsimProfile).where(EsimProfile.account_sid == ctx.account_sid)
    for name, column in (("Eid", EsimProfile.eid), ("SimSid", EsimProfile.sim_sid),
                         ("Status", EsimProfile.status)):
        if name in p:
            stmt = stmt.where(column == p[name])
    return paginate(ctx, stmt, EsimProfile.pk, lambda x: esim_profile_json(ctx, x),
                    descending=True)


# --- UsageRecords ----------------------------------------------------------------------------



@api.operation("ListUsageRecord")
def list_usage_records(ctx: Ctx) -> dict:
    p = ctx.params
    start, end = usage_window(p.get("StartTime"), p.get("EndTime") or ctx.now(),
                              ("StartTime", "EndTime"))
    filters: dict[str, str] = {}
    if "Sim" in p:
        filters["sim"] = service.param_sim(ctx.db, ctx.account_sid, p["Sim"]).sid
    if "Fleet" in p:
        filters["fleet"] = service.param_resource(ctx.db, Fleet, ctx.account_sid, p["Fleet"],
                                                  "HF", "Fleet").sid
    if "Network" in p:
        filters["network"] = service.catalogue_network(p["Network"]).sid
    if "IsoCountry" in p:
        country = p["IsoCountry"]
        if len(country) != 2 or not (country.isascii() and country.isalpha()):
            raise bad_request(f"Invalid IsoCountry: {p['IsoCountry']!r} is not an ISO 3166 "
                              "alpha-2 code")
        filters["isoCountry"] = country.upper()
    granularity = p.get("Granularity", "all")
    found = usage_mod.records(ctx.db, ctx.account_sid, start, end, granularity, p.get("Group"),
                              filters)

    def render(r: dict) -> dict:
        return {"account_sid": ctx.account_sid, "sim_sid": r["sim_sid"],
                "network_sid": r["network_sid"], "fleet_sid": r["fleet_sid"],
                "iso_country": r["iso_country"],
                "period": {"start_time": iso(r["start"]), "end_time": iso(r["end"])},
                "data_upload": r["data_upload"], "data_download": r["data_download"],
                "data_total": r["data_total"], "data_total_billed": 0, "billed_unit": None}

    return page_of_list(ctx, found, render)


# --- operator endpoints: the simulated SM-DP+ ------------------------------------------------
# Outside Twilio's spec, with the same authentication and errors; each acts for the account
# whose credentials call it, on that account's eSIM Profiles only.
#
# - `POST /supersim/operator/EsimDownloads` (`Eid`, optional `MatchingId`): an eUICC downloads
#   the profile available to it (by matching ID, else the one reserved for its EID); answers
#   with the profile, `downloaded`, or `failed` when the SM-DP+ refused the eUICC.
# - `POST /supersim/operator/EsimInstalls` (`Eid`): the eUICC installs the profile it
#   downloaded; answers with the profile, `installed`.

def _operator_eid(ctx: Ctx) -> tuple[str, str | None]:
    form = {name: check_text(name, values[-1]) for name, values in ctx.params.raw.items()}
    eid = form.get("Eid", "")
    if not eid:
        raise bad_request("Missing required parameter Eid in the post body")
    if not (ascii_digits(eid) and len(eid) == 32):
        raise bad_request(f"Invalid Eid: {eid!r} must be 32 digits")
    return eid, form.get("MatchingId") or None


@api.operator("POST", "/operator/EsimDownloads")
def download_esim_profile(ctx: Ctx) -> dict:
    eid, matching_id = _operator_eid(ctx)
    profile = service.available_esim_profile(ctx.db, eid, matching_id, ctx.account_sid)
    service.esim_downloaded(ctx.db, ctx.runtime, profile, eid)
    return esim_profile_json(ctx, profile)


@api.operator("POST", "/operator/EsimInstalls")
def install_esim_profile(ctx: Ctx) -> dict:
    eid, _ = _operator_eid(ctx)
    profile = service.downloaded_esim_profile(ctx.db, eid, ctx.account_sid)
    service.esim_installed(ctx.db, ctx.runtime, profile)
    return esim_profile_json(ctx, profile)
