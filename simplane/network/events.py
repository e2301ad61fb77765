"""The normalised network event every source (simulator, RADIUS, HTTP) produces."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from stdnum import imsi as imsi_numbers
from stdnum.exceptions import ValidationError

KINDS = (
    "attachment.accepted", "attachment.rejected", "attachment.failed",
    "session.started", "session.updated", "session.ended", "session.failed",
)
SESSION_KINDS = KINDS[3:]


@dataclass(frozen=True)
class Operator:
    mcc: str
    mnc: str
    name: str | None
    country: str | None  # ISO 3166 alpha-2, upper case


@cache
def operator(mcc: str, mnc: str) -> Operator:
    """The operator behind an MCC/MNC, from python-stdnum's table of real networks."""
    try:
        info = imsi_numbers.info(mcc + mnc + "0" * (15 - len(mcc) - len(mnc)))
    except ValidationError:
        info = {}
    matched = info.get("mcc") == mcc and info.get("mnc") == mnc
    name = (info.get("brand") or info.get("operator")) if matched else None
    country = info.get("cc", "").upper() if matched and len(info.get("cc", "")) == 2 else None
    return Operator(mcc, mnc, name, country)


def home_network(imsi: str) -> tuple[str, str]:
    """MCC and MNC of the network that issued an IMSI."""
    return _home_network(imsi[:6])


@cache
def _home_network(prefix: str) -> tuple[str, str]:
    """MCC + MNC are at most the first six digits: look each prefix up once."""
    try:
        info = imsi_numbers.info(prefix + "0" * 9)
        return info["mcc"], info["mnc"]
    except (ValidationError, KeyError):
        return prefix[:3], prefix[3:5]


@dataclass(frozen=True)
class NetworkEvent:
    """One fact from the network. Session counters are cumulative for the session, as RADIUS
    accounting reports them; ingest turns them into deltas, so a repeated or late event never
    counts twice."""

    kind: str
    imsi: str
    time: datetime
    session_id: str | None = None  # the gateway's id of the data session (Acct-Session-Id)
    imei: str | None = None
    apn: str | None = None
    rat: str | None = None  # e.g. "LTE", "3G", "NB-IoT"
    mcc: str | None = None  # serving network
    mnc: str | None = None
    cell_id: str | None = None
    lac: str | None = None
    lat: float | None = None
    lon: float | None = None
    ip_address: str | None = None
    bytes_up: int = 0
    bytes_down: int = 0
    packets_up: int = 0
    packets_down: int = 0
    error: str | None = None
    gateway: str | None = None  # the packet gateway that reported it (NAS-Identifier or -IP)
    user_name: str | None = None  # the session's RADIUS User-Name
    disconnect_to: str | None = None  # where its Disconnect-Requests (RFC 5176) go

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.kind in SESSION_KINDS and not self.session_id:
            raise ValueError(f"{self.kind} needs a session_id")
        for name in ("bytes_up", "bytes_down", "packets_up", "packets_down"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
