"""Operator endpoints of the simulated carrier (outside Twilio's spec, same auth and errors).

- `POST /proxy/operator/Messages`: an inbound SMS, as Twilio's messaging webhook carries it
  (`From`, `To`, `Body`, optional `MessageSid`, `MediaUrl0…`).
- `POST /proxy/operator/Calls`: an inbound call, as Twilio's voice webhook carries it (`From`,
  `To`, optional `CallSid`, `CallStatus`).
- `POST /proxy/operator/Calls/{CallSid}`: a call leg's progress (`CallStatus`, optional
  `CallDuration`), as a voice status callback carries it.
- `GET /proxy/operator/Outbox`: what the carrier delivered, newest first (`To`, `AccountSid`,
  `PageSize` filters); admin accounts only, since it spans accounts.

Each acts for the account whose credentials call it, and only on that account's numbers. The
first two wait for the service's intercept or out-of-session callback without holding a thread;
an account may have SIMPLANE_CALLBACK_CONCURRENCY of those callbacks awaited at once (default
16): one more is a 429 (20429), which the carrier retries.
"""

from __future__ import annotations

from fastapi.responses import Response

from simplane.core.api import Ctx, json_response
from simplane.core.errors import bad_request
from simplane.core.params import check_text
from simplane.core.sids import looks_like_sid, new_sid
from simplane.proxy import carrier, inbound

MAX_BODY = 1600


def _no_nul(values: dict[str, str]) -> dict[str, str]:
    """The values, unless one holds a NUL character (the operator endpoints' parameters are
    not in a spec, so the kernel has not checked them)."""
    return {name: check_text(name, value) for name, value in values.items()}


def _form(ctx: Ctx, *required: str) -> dict[str, str]:
    form = _no_nul({k: v[-1] for k, v in ctx.params.raw.items()})
    for name in required:
        if not form.get(name):
            raise bad_request(f"Missing required parameter {name} in the post body")
    return form


def _routed(result: dict) -> dict | Response:
    """Replies sent from the out-of-session callback's TwiML are a 200; a routed interaction
    is a 201."""
    return result if "interaction_sid" in result else json_response(result, 200)


async def messages(ctx: Ctx) -> dict | Response:
    form = _form(ctx, "From", "To")
    media = [form[k] for k in sorted(form) if k.startswith("MediaUrl") and k[8:].isdigit()]
    body = form.get("Body", "")
    if not body and not media:
        raise bad_request("Missing required parameter Body in the post body")
    if len(body) > MAX_BODY:
        raise bad_request(f"Invalid Body: longer than {MAX_BODY} characters")
    # Made up here when the carrier gave none, so that the callbacks and the Interaction agree.
    sid = form.get("MessageSid") or new_sid("SM")
    if not (looks_like_sid(sid, "SM") or looks_like_sid(sid, "MM")):
        raise bad_request(f"Invalid MessageSid: {sid!r} is not an SM… or MM… SID")
    return _routed(await inbound.receive(ctx.runtime, ctx.account_sid, inbound.Inbound(
        "message", form["From"], form["To"], sid, body=body, media_urls=media)))


async def calls(ctx: Ctx) -> dict | Response:
    form = _form(ctx, "From", "To")
    sid = form.get("CallSid") or new_sid("CA")
    if not looks_like_sid(sid, "CA"):
        raise bad_request(f"Invalid CallSid: {sid!r} is not a CA… SID")
    status = form.get("CallStatus", "ringing")
    if status not in ("queued", "ringing", "in-progress"):
        raise bad_request(f"Invalid CallStatus: a new inbound call is queued, ringing or "
                          f"in-progress, not {status!r}")
    return _routed(await inbound.receive(ctx.runtime, ctx.account_sid, inbound.Inbound(
        "voice", form["From"], form["To"], sid, call_status=status)))


def call_status(ctx: Ctx) -> dict:
    form = _form(ctx, "CallStatus")
    return inbound.call_status(ctx.runtime, ctx.account_sid, ctx.path["CallSid"],
                               form["CallStatus"], form.get("CallDuration"))


def outbox(ctx: Ctx) -> dict:
    ctx.require_admin()
    query = _no_nul(dict(ctx.query_pairs))
    try:
        size = int(query.get("PageSize", "50"))
    except ValueError:
        size = 0
    if not 1 <= size <= 1000:
        raise bad_request("Invalid PageSize: must be between 1 and 1000")
    rows = carrier.outbox(ctx.db, query.get("AccountSid"), query.get("To"), size)
    return {"outbox": [carrier.outbox_json(r) for r in rows]}
