"""The clock, for admin accounts.

    GET  /admin/v1/Clock   → {"now": "2026-04-01T00:00:00Z", "mode": "virtual", "speed": 0.0}
    POST /admin/v1/Clock   Advance=P90D (or seconds, 90d, 6h, 15m)  |  Time=2026-06-01T00:00:00Z

Moving the clock runs, in time order, every job that falls due on the way before it answers
(see `simplane.core.virtual_clock`). On real time it answers 409.
"""

from __future__ import annotations

from simplane.core.api import Ctx, ProductAPI
from simplane.core.clock import Clock, ClockError, iso
from simplane.core.errors import bad_request, conflict
from simplane.core.params import parse_datetime
from simplane.core.virtual_clock import advance_clock, set_clock

api = ProductAPI("admin")


def representation(clock: Clock) -> dict:
    return {"now": iso(clock.now()), "mode": clock.mode, "speed": clock.speed}


@api.operator("GET", "/v1/Clock")
def fetch_clock(ctx: Ctx) -> dict:
    ctx.require_admin()
    return representation(ctx.clock)


@api.operator("POST", "/v1/Clock", own_transactions=True)
def move_clock(ctx: Ctx) -> dict:
    ctx.require_admin()
    given = {name: values[-1] for name, values in ctx.params.raw.items()
             if name in ("Advance", "Time")}
    if not given:
        raise bad_request("Missing required parameter Advance or Time in the post body")
    if len(given) > 1:
        raise bad_request("Invalid Time: give Advance or Time, not both")
    try:
        if "Time" in given:
            set_clock(ctx.runtime, parse_datetime("Time", given["Time"]))
        else:
            advance_clock(ctx.runtime, given["Advance"].strip())
    except ClockError as error:
        raise conflict(str(error)) from None
    except ValueError as error:
        raise bad_request(f"Invalid {min(given)}: {error}") from None
    return representation(ctx.clock)
