"""Super SIM Connection Events: the data of the seven event types, as ingest writes them to the
Event Streams outbox, in the same transaction as the session state they describe.

Properties are present or omitted exactly as Twilio's Connection Events page says: no `error`
without an error, no data properties on attachment events, `data_modifier` only once the SIM is
past its data limit, `location` and `imei` only when the network sent them. Two choices the page
leaves open: `rat_type` and `ip_address` are likewise omitted when the network did not send them,
and `apn` is `super` (Super SIM's APN) when it named none.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

from simplane.core.clock import iso
from simplane.core.sids import new_sid
from simplane.network.events import NetworkEvent
from simplane.supersim import errors as E
from simplane.supersim import networks

PREFIX = "com.twilio.iot.supersim.connection."
ATTACHMENT = {"attachment.accepted", "attachment.rejected", "attachment.failed"}

# Why a data session was refused, as the error of its data-session.failed event.
REFUSALS = {"DATA_DISABLED": (E.DATA_DISABLED, "Data is disabled for the Super SIM's Fleet"),
            "DATA_LIMIT_REACHED": (E.DATA_LIMIT_REACHED,
                                   "The Super SIM has reached its Fleet's data limit")}


timestamp = lru_cache(maxsize=4096)(iso)  # a batch's events share their times


def rat_type(rat: str | None) -> str | None:
    """The radio access technology as the events name it: 2G, 3G or 4G LTE."""
    if rat is None:
        return None
    upper = rat.upper()
    if upper in ("2G", "GSM", "GPRS", "EDGE", "GERAN"):
        return "2G"
    if upper in ("3G", "UMTS", "WCDMA", "HSPA", "UTRAN"):
        return "3G"
    return "4G LTE"


@lru_cache(maxsize=1024)
def network(mcc: str | None, mnc: str | None) -> dict[str, Any] | None:
    """The event's `network` property (one dict per network, shared: not to be changed)."""
    if not mcc or not mnc:
        return None
    found = networks.network_for(mcc, mnc)
    return {"mcc": mcc, "mnc": mnc, "friendly_name": found.friendly_name if found else None,
            "iso_country": found.iso_country if found else None,
            "sid": found.sid if found else None}


def event(kind: str, facts: Any, when: datetime, *, imsi: str, imei: str | None = None,
          rat: str | None = None, mcc: str | None = None, mnc: str | None = None,
          location: dict[str, Any] | None = None, error: tuple[int, str] | None = None,
          session: dict[str, Any] | None = None, window: tuple[datetime, datetime] | None = None,
          growth: tuple[int, int] = (0, 0), blocked: bool = False) -> dict[str, Any] | None:
    """The event's `data`, or None when the network named no serving network (every connection
    event carries one)."""
    where = network(mcc, mnc)
    if where is None:
        return None
    type_ = PREFIX + kind
    data: dict[str, Any] = {
        "event_sid": new_sid("EZ"), "event_type": type_, "timestamp": timestamp(when),
        "account_sid": facts.account_sid, "sim_sid": facts.sid, "sim_iccid": facts.iccid,
        "sim_unique_name": facts.unique_name, "fleet_sid": facts.fleet_sid, "imsi": imsi,
        "network": where,
    }
    if imei:
        data["imei"] = imei
    if location:
        data["location"] = location
    if rat:
        data["rat_type"] = rat_type(rat)
    if error:
        data["error"] = {"code": error[0], "message": error[1]}
    if blocked:
        data["data_modifier"] = "blocked"
    if kind in ATTACHMENT or session is None:
        return data
    data["apn"] = session["apn"] or "super"
    if session["ip_address"]:
        data["ip_address"] = session["ip_address"]
    data["data_session_sid"] = session["sid"]
    data["data_session_start_time"] = timestamp(session["start"])
    if kind in ("data-session.ended", "data-session.failed") and session["end"] is not None:
        data["data_session_end_time"] = timestamp(session["end"])
    if window is not None:
        up, down = growth
        data.update({
            "data_session_update_start_time": timestamp(window[0]),
            "data_session_update_end_time": timestamp(window[1]),
            "data_upload": up, "data_download": down, "data_total": up + down,
            "data_session_data_upload": session["bytes_up"],
            "data_session_data_download": session["bytes_down"],
            "data_session_data_total": session["bytes_up"] + session["bytes_down"]})
    return data


CELL = ("cell_id", "lac", "lat", "lon")
SESSION_CELL = itemgetter(*CELL)


def location_of(event: NetworkEvent, session: dict[str, Any] | None = None) -> dict | None:
    """The cell the device is on, from the event or (for interim records) its session."""
    if event.cell_id or event.lat is not None:
        values: tuple = (event.cell_id, event.lac, event.lat, event.lon)
    elif session is not None:
        values = SESSION_CELL(session)
    else:
        return None
    cell = {name: value for name, value in zip(CELL, values, strict=True) if value is not None}
    return cell or None
