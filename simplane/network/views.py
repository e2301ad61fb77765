"""HTTP ingest for gateways that do not speak RADIUS: the normalised event as JSON, batched.

    POST /network/v1/Events   (an admin account's credentials)
    {"events": [{"kind": "session.updated", "imsi": "…", "time": "2026-01-01T00:06:00Z",
                 "session_id": "…", "bytes_up": 1200, "bytes_down": 5300, …}, …]}

The batch (at most 10,000 events, and 10 MiB unless SIMPLANE_MAX_BODY is larger) is ingested
whole or not at all; the answer counts what was taken.

    GET /network/v1/Sims/{Sid}/Disconnects   (the SIM's account)

The Disconnect-Requests owed or sent to the packet gateways of the SIM's sessions.
"""

from __future__ import annotations

from dataclasses import asdict, fields

import orjson
from sqlalchemy import select

from simplane.core.api import Ctx, ProductAPI
from simplane.core.clock import iso
from simplane.core.errors import bad_request, not_found
from simplane.core.params import parse_datetime
from simplane.network import disconnects
from simplane.network.events import NetworkEvent
from simplane.network.ingest import ingest_into
from simplane.network.models import Disconnect
from simplane.supersim.models import Sim as SuperSim
from simplane.wireless.models import Sim

api = ProductAPI("network")
MAX_BATCH = 10_000
# Not from HTTP: only the RADIUS listener says where a gateway takes Disconnect-Requests.
FIELDS = {f.name: f for f in fields(NetworkEvent) if f.name not in ("user_name", "disconnect_to")}
INTEGERS = {"bytes_up", "bytes_down", "packets_up", "packets_down"}
FLOATS = {"lat", "lon"}


def parse_event(index: int, raw: object) -> NetworkEvent:
    where = f"events[{index}]"
    if not isinstance(raw, dict):
        raise bad_request(f"Invalid {where}: must be an object")
    unknown = set(raw) - set(FIELDS)
    if unknown:
        raise bad_request(f"Invalid {where}: unknown field {min(unknown)!r}")
    values: dict = {}
    for name, value in raw.items():
        if value is None:
            continue
        if name == "time":
            if not isinstance(value, str):
                raise bad_request(f"Invalid {where}.time: must be an ISO 8601 string")
            value = parse_datetime(f"{where}.time", value)
        elif name in INTEGERS:
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
                raise bad_request(f"Invalid {where}.{name}: must be a non-negative integer")
        elif name in FLOATS:
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise bad_request(f"Invalid {where}.{name}: must be a number")
        elif not isinstance(value, str) or len(value) > 256:
            raise bad_request(f"Invalid {where}.{name}: must be a string")
        values[name] = value
    for required in ("kind", "imsi", "time"):
        if required not in values:
            raise bad_request(f"Missing required field {where}.{required}")
    try:
        return NetworkEvent(**values)
    except ValueError as exc:
        raise bad_request(f"Invalid {where}: {exc}") from None


@api.operator("POST", "/v1/Events", status=202, max_body=MAX_BATCH * 1024, form=False)
def post_events(ctx: Ctx) -> dict:
    ctx.require_admin()
    try:
        payload = orjson.loads(ctx.body or b"null")
    except orjson.JSONDecodeError:
        raise bad_request("Invalid body: must be JSON") from None
    events = payload.get("events") if isinstance(payload, dict) else payload
    if not isinstance(events, list) or not events:
        raise bad_request("Invalid events: must be a non-empty list")
    if len(events) > MAX_BATCH:
        raise bad_request(f"Invalid events: at most {MAX_BATCH} in one batch")
    parsed = [parse_event(i, e) for i, e in enumerate(events)]
    result = ingest_into(ctx.db, parsed, ctx.now(),
                         hold_disconnects=not disconnects.sends(ctx.runtime))
    if result.usage_notifications:
        ctx.runtime.worker.wake_after_commit(ctx.db)
    out = asdict(result)
    out.pop("unknown")
    return out


@api.operator("GET", "/v1/Sims/{Sid}/Disconnects")
def list_disconnects(ctx: Ctx) -> dict:
    """The Disconnect-Requests (RFC 5176) owed or sent to the gateways of one of the account's
    SIMs (Wireless or Super SIM), the 50 newest first: why, to where, and how each went."""
    sid = ctx.path["Sid"]
    owned = any(ctx.db.scalar(select(model.pk).where(model.sid == sid,
                                                    model.account_sid == ctx.account_sid))
                for model in (Sim, SuperSim))
    if not owned:
        raise not_found("Sim", sid)
    rows = ctx.db.scalars(select(Disconnect).where(Disconnect.sim_sid == sid)
                          .order_by(Disconnect.pk.desc()).limit(50))
    return {"disconnects": [{
        "sim_sid": row.sim_sid, "session_id": row.session_id, "gateway": row.address,
        "reason": row.reason, "status": row.status, "attempts": row.attempts,
        "last_error": row.last_error, "next_attempt_at": iso(row.next_attempt_at),
        "date_created": iso(row.date_created), "date_updated": iso(row.date_updated),
    } for row in rows]}
