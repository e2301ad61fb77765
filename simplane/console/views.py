"""The console's pages: one route and one template each, served under /console. Reads go
through `queries`, every change through the products' services (the rules, errors, events and
callbacks of the API). An htmx request for `?part=NAME` gets that block of the page alone."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

from simplane.console import queries
from simplane.console import session as sessions
from simplane.console.session import Session
from simplane.core.clock import utc
from simplane.core.errors import TwilioError
from simplane.core.models import Account
from simplane.core.runtime import Runtime
from simplane.events import dispatcher
from simplane.events import service as events_service
from simplane.events.models import EventSubscribedEvent, EventSubscription
from simplane.proxy import service as proxy_service
from simplane.proxy.models import ProxyInteraction, ProxyParticipant, ProxyService, ProxySession
from simplane.supersim import service as supersim_service
from simplane.supersim.models import Fleet, NetworkAccessProfile
from simplane.wireless import service as wireless_service
from simplane.wireless.models import RatePlan

log = logging.getLogger("simplane.console")

router = APIRouter(prefix="/console", include_in_schema=False)
STATIC = StaticFiles(directory=Path(__file__).parent / "static")
templates = Environment(loader=PackageLoader("simplane.console", "templates"),
                        autoescape=select_autoescape(default=True), trim_blocks=True,
                        lstrip_blocks=True)

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY",
           "Cache-Control": "no-store"}

# The lifecycle actions a SIM's page offers: (button, status asked for), by product.
ACTIONS = {
    "wireless": {"Activate": "active", "Suspend": "suspended", "Deactivate": "deactivated"},
    "supersim": {"Activate": "active", "Deactivate": "inactive"},
}
TRANSITIONS = {"wireless": wireless_service.TRANSITIONS, "supersim": supersim_service.TRANSITIONS}
LIVE_SECONDS = 300.0  # a stream ends after this; the browser reconnects (EventSource's retry)
LIVE_POLL = 1.0  # seconds between looks at the database
LIVE_LIMIT = 200  # streams open at once; past it a page works without live updates


def _bytes(value: int | float | None) -> str:
    amount = float(value or 0)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(amount) < 1000 or unit == "TB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{amount:.1f} TB"


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value.replace("T", " ").rstrip("Z").split(".")[0] + " UTC"
    return utc(value).strftime("%Y-%m-%d %H:%M:%S UTC")


templates.filters["bytes"] = _bytes
templates.filters["when"] = _when
# The shared pieces of pages, available to every template and to each block rendered alone.
_MACROS = templates.get_template("_macros.html").module
templates.globals.update({name: getattr(_MACROS, name)
                          for name in ("usage_chart", "status", "events_table", "sinks_table")})


# --- rendering -------------------------------------------------------------------------------

def render(request: Request, name: str, code: int = 200, **values: Any) -> Response:
    """The page (or, for `?part=NAME`, that block of it) with the console's security headers."""
    template = templates.get_template(name)
    values.setdefault("session", None)
    values["request"] = request
    values["path"] = request.url.path
    part = request.query_params.get("part")
    if part and part in template.blocks:
        body = "".join(template.blocks[part](template.new_context(values)))
    else:
        body = template.render(values)
    return HTMLResponse(body, status_code=code, headers=HEADERS)


def error_page(request: Request, status: int, message: str,
               session: Session | None = None) -> Response:
    titles = {404: "Not found", 403: "Not allowed", 429: "Too many attempts",
              500: "Something went wrong"}
    return render(request, "error.html", status, title=titles.get(status, "Error"),
                  message=message, session=session)


def not_found_page(request: Request) -> Response:
    """What app.py answers for a /console path that names nothing."""
    return error_page(request, 404, "There is no such page in the console.")


def _sign_in_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/console/sign-in?next={quote(target, safe='')}", 303)


def _back(path: str, session: Session, **query: str) -> Response:
    """Back to a page after a change, with a message for it (`notice` or `error`), signed with
    the session's own token so that a link from elsewhere cannot put words on a page."""
    for name in ("notice", "error"):
        if query.get(name):
            query["sig"] = _signature(session, query[name])
    suffix = "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items() if v)
    return RedirectResponse(path + (f"?{suffix}" if suffix else ""), 303)


def _signature(session: Session, text: str) -> str:
    return hmac.new(session.csrf.encode(), text.encode(), hashlib.sha256).hexdigest()[:32]


def _messages(request: Request, session: Session) -> dict[str, str]:
    """The message a page was sent back with, when its signature holds."""
    query = request.query_params
    for name in ("notice", "error"):
        text = query.get(name, "")
        if text and hmac.compare_digest(_signature(session, text), query.get("sig", "")):
            return {name: text}
    return {}


FORM_LIMIT = 64 * 1024  # bytes: the console's forms are a few fields


async def form(request: Request) -> dict[str, str]:
    """The posted form (application/x-www-form-urlencoded), the last value of each name; a body
    past FORM_LIMIT is refused (413) as soon as that is known."""
    if request.method != "POST":
        return {}
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > FORM_LIMIT:
            raise HTTPException(413, "That form is too large.")
        chunks.append(chunk)
    return dict(parse_qsl(b"".join(chunks).decode("utf-8", "replace"), keep_blank_values=True))


FormValues = Annotated[dict[str, str], Depends(form)]


class Signed:
    """A page's caller: the session, or the response to answer instead (the sign-in page, or a
    refusal of a form that is not this session's)."""

    def __init__(self, session: Session | None, refusal: Response | None) -> None:
        self.session = session
        self.refusal = refusal


def signed(request: Request, values: FormValues) -> Signed:
    current = sessions.read(request)
    if current is None:
        if request.method == "POST":
            return Signed(None, RedirectResponse("/console/sign-in", 303))
        return Signed(None, _sign_in_redirect(request))
    if request.method == "POST" and not (
            sessions.same_origin(request)
            and sessions.same_token(current.csrf, values.get("csrf"))):
        return Signed(None, error_page(request, 403, "This form has expired or did not come from "
                                       "this console: reload the page and try again.", current))
    return Signed(current, None)


Who = Annotated[Signed, Depends(signed)]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _account_choices(db: DbSession, session: Session) -> list[Any]:
    """The accounts the signed-in credentials may look at: their own and its subaccounts."""
    return list(db.execute(select(Account.sid, Account.friendly_name)
                           .where((Account.sid == session.home)
                                  | (Account.owner_account_sid == session.home))
                           .order_by(Account.pk).limit(200)))


# --- signing in and out ----------------------------------------------------------------------

@router.get("")
@router.get("/")
def home(request: Request) -> Response:
    return RedirectResponse("/console/overview", 303)


def _safe_next(target: str | None) -> str:
    """Only a console path: never another site after signing in."""
    if target and target.startswith("/console/") and not target.startswith("/console//"):
        return target
    return "/console/overview"


@router.get("/sign-in")
def sign_in_page(request: Request, next: str = "") -> Response:
    if sessions.read(request) is not None:
        return RedirectResponse(_safe_next(next), 303)
    token = sessions.sign_in_token(request)
    response = render(request, "sign_in.html", next=_safe_next(next), csrf=token)
    sessions.keep_sign_in_token(request, response, token)
    return response


@router.post("/sign-in")
async def sign_in(request: Request, values: FormValues) -> Response:
    target = _safe_next(values.get("next"))

    def again(message: str, status: int, retry: int | None = None) -> Response:
        token = sessions.sign_in_token(request)
        response = render(request, "sign_in.html", status, next=target, csrf=token,
                          error=message, username=values.get("username", ""))
        sessions.keep_sign_in_token(request, response, token)
        if retry:
            response.headers["Retry-After"] = str(retry)
        return response

    if not sessions.same_origin(request) or not sessions.same_token(
            request.cookies.get(sessions.SIGN_IN_COOKIE), values.get("csrf")):
        return again("The sign-in form expired: please sign in again.", 403)
    username, password = values.get("username", "").strip(), values.get("password", "")
    if not username or not password:
        return again("Enter an Account SID (or API key SID) and its auth token (or secret).", 400)
    try:
        account_sid = await run_in_threadpool(sessions.verify, request, username, password)
    except sessions.Throttled as throttled:
        await asyncio.sleep(_runtime(request).authenticator.DELAY)
        return again(f"Too many failed sign-ins: try again in {throttled.wait} seconds.", 429,
                     throttled.wait)
    if account_sid is None:
        await asyncio.sleep(_runtime(request).authenticator.DELAY)
        return again("Those credentials are not valid: check the SID and the token.", 401)
    response = RedirectResponse(target, 303)
    sessions.start(request, response, username, account_sid)
    return response


@router.post("/sign-out")
def sign_out(request: Request, who: Who) -> Response:
    response = RedirectResponse("/console/sign-in", 303)
    sessions.end(response)
    return response


@router.post("/account")
def switch_account(request: Request, who: Who, values: FormValues) -> Response:
    if who.refusal or who.session is None:
        return who.refusal  # type: ignore[return-value]
    wanted = values.get("account", "")
    with _runtime(request).db.read() as db:
        allowed = {row.sid for row in _account_choices(db, who.session)}
    if wanted not in allowed:
        return error_page(request, 404, f"No account {wanted} is within reach of these "
                          "credentials.", who.session)
    response = RedirectResponse("/console/overview", 303)
    sessions.switch(request, response, who.session, wanted)
    return response


def _page(request: Request, who: Signed, name: str, build: Callable[[DbSession, Session], dict]
          ) -> Response:
    """A signed-in page: its values built in one read transaction, plus what every page shows."""
    if who.refusal or who.session is None:
        return who.refusal  # type: ignore[return-value]
    current = who.session
    try:
        with _runtime(request).db.read() as db:
            values = build(db, current)
            accounts = _account_choices(db, current)
    except TwilioError as error:
        return error_page(request, error.status, error.message, current)
    return render(request, name, session=current, accounts=accounts,
                  **{**_messages(request, current), **values})


# --- overview --------------------------------------------------------------------------------

@router.get("/overview")
def overview(request: Request, who: Who) -> Response:
    runtime = _runtime(request)

    def build(db: DbSession, s: Session) -> dict:
        now = runtime.clock.now()
        month = utc(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return {
            "counts": queries.status_counts(db, s.account),
            "today": queries.account_usage(db, s.account, now, "hourly"),
            "month": queries.account_usage(db, s.account, now, "daily"),
            "month_total": queries.usage_by_roaming(db, s.account, month),
            "month_super": queries.super_sim_usage(db, s.account, month),
            "open_sessions": queries.open_sessions(db, s.account),
            "top": queries.top_sims(db, s.account),
            "events": queries.connection_events(db, s.account),
            "sinks": [(sink, dispatcher.backlog(db, sink, cap=10_000))
                      for sink in queries.sinks(db, s.account)],
            "now": now,
        }

    return _page(request, who, "overview.html", build)


# --- SIMs ------------------------------------------------------------------------------------

# Bulk actions on the SIMs a list matches: (label, status asked for, or None for a new rate
# plan or Fleet), at most BULK_LIMIT SIMs at a time, all in one transaction.
BULK = {
    "wireless": {"activate": ("Activate", "active"), "suspend": ("Suspend", "suspended"),
                 "plan": ("Change rate plan", None)},
    "supersim": {"activate": ("Activate", "active"), "deactivate": ("Deactivate", "inactive"),
                 "plan": ("Change Fleet", None)},
}
BULK_LIMIT = 1000


def _bulk_statement(db: DbSession, account_sid: str, product: str, q: str, status: str,
                    group_pk: int | None, action: str) -> Any:
    target = BULK[product][action][1]
    from_statuses = None
    if target is not None:
        from_statuses = {s for s, allowed in TRANSITIONS[product].items() if target in allowed}
    return queries.bulk_targets(db, account_sid, product, q, status, group_pk, from_statuses,
                                BULK_LIMIT, grouped=target == "active")


@router.get("/sims")
def sims(request: Request, who: Who, product: str = "wireless", q: str = "", status: str = "",
         group: str = "", after: str = "", bulk: str = "", to: str = "",
         ) -> Response:
    product = product if product in queries.PRODUCTS else "wireless"

    def build(db: DbSession, s: Session) -> dict:
        choices = queries.groups(db, s.account, product)
        chosen = next((g for g in choices if g.sid == group), None)
        cursor = int(after) if after.isdigit() else None
        page = queries.list_sims(db, s.account, product, q, status,
                                 chosen.pk if chosen else None, cursor)
        if group and chosen is None:
            page = queries.SimPage([], None)
        statuses = sorted(TRANSITIONS[product]) + (["canceled"] if product == "wireless" else [])
        review: dict[str, Any] | None = None
        if bulk in BULK[product] and not (group and chosen is None):
            target = next((g for g in choices if g.sid == to), None)
            if BULK[product][bulk][1] is None and target is None:
                review = {"error": "Choose the " + ("rate plan" if product == "wireless"
                                                    else "Fleet") + " to move the SIMs to."}
            else:
                touched = queries.count(db, _bulk_statement(db, s.account, product, q, status,
                                                            chosen.pk if chosen else None, bulk))
                review = {"action": bulk, "label": BULK[product][bulk][0], "count": touched,
                          "to": target, "limit": BULK_LIMIT}
        return {"product": product, "q": q, "status": status, "group": group, "groups": choices,
                "statuses": statuses, "page": page, "after": cursor, "bulk_actions": BULK[product],
                "review": review}

    return _page(request, who, "sims.html", build)


@router.post("/sims/bulk")
def sims_bulk(request: Request, who: Who, values: FormValues) -> Response:
    if who.refusal or who.session is None:
        return who.refusal  # type: ignore[return-value]
    runtime = _runtime(request)
    current = who.session
    product = values.get("product", "")
    action = values.get("action", "")
    if product not in BULK or action not in BULK[product]:
        return error_page(request, 400, "That bulk action does not exist.", current)
    q, status, group, to = (values.get(k, "") for k in ("q", "status", "group", "to"))
    label, target = BULK[product][action]
    back = {"product": product, "q": q, "status": status, "group": group}
    try:
        with runtime.db.write() as db:
            choices = {g.sid: g for g in queries.groups(db, current.account, product)}
            group_pk = choices[group].pk if group in choices else None
            if group and group_pk is None:
                raise TwilioError(400, 20001, f"No rate plan or Fleet {group} on this account")
            stmt = _bulk_statement(db, current.account, product, q, status, group_pk, action)
            params: dict[str, str] = ({"Status": target} if target is not None else
                                      {"RatePlan" if product == "wireless" else "Fleet": to})
            changed = 0
            for sim in db.scalars(stmt):
                if product == "wireless":
                    wireless_service.update_sim(db, runtime, current.account, sim, params)
                else:
                    supersim_service.update_sim(db, runtime, current.account, sim, params)
                changed += 1
    except TwilioError as error:
        return _back("/console/sims", current, **back, error=error.message)
    return _back("/console/sims", current, **back,
                 notice=f"{label}: {changed} SIM(s) changed")


def _load_sim(db: DbSession, account_sid: str, sid: str) -> tuple[str, Any]:
    product = queries.product_of(sid)
    if product == "wireless":
        return product, wireless_service.get_sim(db, account_sid, sid)
    if product == "supersim":
        return product, supersim_service.get_sim(db, account_sid, sid)
    raise TwilioError(404, 20404, f"There is no SIM {sid} on this account.")


def _sim_values(db: DbSession, runtime: Runtime, s: Session, sid: str, granularity: str
                ) -> dict:
    product, sim = _load_sim(db, s.account, sid)
    now = runtime.clock.now()
    group: Any
    if product == "wireless":
        group = db.get(RatePlan, sim.rate_plan_pk) if sim.rate_plan_pk else None
    else:
        group = db.get(Fleet, sim.fleet_pk) if sim.fleet_pk else None
    allowed = TRANSITIONS[product].get(sim.status, set())
    actions = [(label, status) for label, status in ACTIONS[product].items() if status in allowed]
    return {
        "product": product, "sim": sim, "group": group, "actions": actions,
        "granularity": granularity,
        "usage": queries.sim_usage(db, product, sim.sid, now, granularity),
        "data_sessions": queries.sim_sessions(db, s.account, sim.sid),
        "locations": queries.sim_locations(db, s.account, sim.sid),
        "commands": queries.sim_commands(db, s.account, product, sim.sid),
        "events": queries.connection_events(db, s.account, sim.sid) if product == "supersim"
        else [],
        "groups": queries.groups(db, s.account, product),
    }


@router.get("/sims/{sid}")
def sim_page(request: Request, who: Who, sid: str, usage: str = "daily", confirm: str = "",
             ) -> Response:
    runtime = _runtime(request)
    granularity = usage if usage in ("hourly", "daily") else "daily"

    def build(db: DbSession, s: Session) -> dict:
        values = _sim_values(db, runtime, s, sid, granularity)
        chosen = next((a for a in values["actions"] if a[1] == confirm), None)
        return {**values, "confirm": chosen}

    return _page(request, who, "sim.html", build)


def _change(request: Request, who: Signed, sid: str,
            change: Callable[[DbSession, Runtime, Session, str, Any], str | None]) -> Response:
    """A form on a SIM's page: `change` runs in one write transaction (through the product's
    service); its error is shown in words on the page it came from."""
    if who.refusal or who.session is None:
        return who.refusal  # type: ignore[return-value]
    runtime = _runtime(request)
    current = who.session
    try:
        with runtime.db.write() as db:
            product, sim = _load_sim(db, current.account, sid)
            notice = change(db, runtime, current, product, sim)
    except TwilioError as error:
        if error.status == 404:
            return error_page(request, 404, error.message, current)
        with runtime.db.read() as db:
            values = _sim_values(db, runtime, current, sid, "daily")
            accounts = _account_choices(db, current)
        return render(request, "sim.html", error.status, session=current, accounts=accounts,
                      confirm=None, error=error.message, **values)
    return _back(f"/console/sims/{sid}", current, notice=notice or "")


@router.post("/sims/{sid}/status")
def sim_status(request: Request, who: Who, sid: str, values: FormValues) -> Response:
    wanted = values.get("status", "")

    def change(db: DbSession, runtime: Runtime, s: Session, product: str, sim: Any) -> str:
        if product == "wireless":
            wireless_service.update_sim(db, runtime, s.account, sim, {"Status": wanted})
        else:
            supersim_service.update_sim(db, runtime, s.account, sim, {"Status": wanted})
        return f"Status changed to {wanted}" if sim.status == wanted else (
            f"Status change to {wanted} under way")

    return _change(request, who, sid, change)


@router.post("/sims/{sid}/plan")
def sim_plan(request: Request, who: Who, sid: str, values: FormValues) -> Response:
    wanted = values.get("group", "")

    def change(db: DbSession, runtime: Runtime, s: Session, product: str, sim: Any) -> str:
        if product == "wireless":
            wireless_service.update_sim(db, runtime, s.account, sim, {"RatePlan": wanted})
            return "Rate plan changed"
        supersim_service.update_sim(db, runtime, s.account, sim, {"Fleet": wanted})
        return "Fleet changed"

    return _change(request, who, sid, change)


@router.post("/sims/{sid}/commands")
def sim_command(request: Request, who: Who, sid: str, values: FormValues) -> Response:
    body = values.get("command", "")

    def change(db: DbSession, runtime: Runtime, s: Session, product: str, sim: Any) -> str:
        command: Any
        if product == "wireless":
            command = wireless_service.create_command(db, runtime, s.account,
                                                      {"Sim": sim.sid, "Command": body})
        else:
            command = supersim_service.create_sms_command(db, runtime, s.account,
                                                          {"Sim": sim.sid, "Payload": body})
        return f"Command {command.sid} queued"

    return _change(request, who, sid, change)


# --- live updates ----------------------------------------------------------------------------

class _Streams:
    open = 0


async def _live(request: Request, sim_sid: str | None) -> Response:
    """Server-Sent Events naming what changed (sessions, commands, events): the page fetches
    those parts again. One coroutine per client, no thread held between looks; each stream ends
    after LIVE_SECONDS and the browser opens another."""
    current = await run_in_threadpool(sessions.read, request)
    if current is None:
        return Response("Sign in first", 401, media_type="text/plain")
    runtime = _runtime(request)
    if sim_sid is not None:
        def owned() -> bool:
            with runtime.db.read() as db:
                try:
                    _load_sim(db, current.account, sim_sid)
                except TwilioError:
                    return False
                return True

        if not await run_in_threadpool(owned):
            return Response("No such SIM", 404, media_type="text/plain")
    if _Streams.open >= LIVE_LIMIT:
        return Response("Too many live pages open", 503, media_type="text/plain",
                        headers={"Retry-After": "30"})

    def positions() -> dict[str, int]:
        with runtime.db.read() as db:
            return queries.latest_positions(db, current.account, sim_sid)

    async def stream() -> AsyncIterator[str]:
        _Streams.open += 1
        try:
            seen = await run_in_threadpool(positions)
            yield "retry: 1000\n\n"
            loop = asyncio.get_running_loop()
            ends = loop.time() + LIVE_SECONDS
            while loop.time() < ends and not await request.is_disconnected():
                await asyncio.sleep(LIVE_POLL)
                now = await run_in_threadpool(positions)
                for name, value in now.items():
                    if value != seen.get(name):
                        yield f"event: {name}\ndata: {value}\n\n"
                seen = now
        finally:
            _Streams.open -= 1

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/live")
async def live(request: Request) -> Response:
    return await _live(request, None)


@router.get("/sims/{sid}/live")
async def sim_live(request: Request, sid: str) -> Response:
    return await _live(request, sid)


# --- Event Streams ---------------------------------------------------------------------------

@router.get("/event-streams")
def event_streams(request: Request, who: Who) -> Response:
    def build(db: DbSession, s: Session) -> dict:
        subscriptions = list(db.scalars(select(EventSubscription)
                                        .where(EventSubscription.account_sid == s.account)
                                        .order_by(EventSubscription.pk)))
        types: dict[int, list[Any]] = {}
        if subscriptions:
            for row in db.scalars(select(EventSubscribedEvent).where(
                    EventSubscribedEvent.subscription_pk.in_([x.pk for x in subscriptions]))):
                types.setdefault(row.subscription_pk, []).append(row)
        return {"sinks": [(sink, dispatcher.backlog(db, sink, cap=10_000))
                          for sink in queries.sinks(db, s.account)],
                "subscriptions": subscriptions, "types": types}

    return _page(request, who, "event_streams.html", build)


@router.post("/event-streams/{sid}/test")
def sink_test(request: Request, who: Who, sid: str) -> Response:
    if who.refusal or who.session is None:
        return who.refusal  # type: ignore[return-value]
    runtime = _runtime(request)
    try:
        with runtime.db.write() as db:
            sink = events_service.get_sink(db, who.session.account, sid)
            events_service.test_sink(db, sink, runtime.clock.now())
            runtime.worker.wake_after_commit(db)
    except TwilioError as error:
        return error_page(request, error.status, error.message, who.session)
    return _back("/console/event-streams", who.session, notice=f"Test event queued for {sid}")


# --- Proxy -----------------------------------------------------------------------------------

@router.get("/proxy")
def proxy(request: Request, who: Who, service: str = "", session: str = "") -> Response:
    def build(db: DbSession, s: Session) -> dict:
        services = list(db.scalars(select(ProxyService).where(ProxyService.account_sid == s.account)
                                   .order_by(ProxyService.pk).limit(200)))
        chosen = proxy_service.get_service(db, s.account, service) if service else None
        open_sessions: list[ProxySession] = []
        detail = participants = interactions = None
        if chosen is not None:
            open_sessions = list(db.scalars(
                select(ProxySession).where(ProxySession.service_pk == chosen.pk,
                                           ProxySession.status.in_(("open", "in-progress")))
                .order_by(ProxySession.pk.desc()).limit(100)))
            if session:
                detail = proxy_service.get_session(db, chosen, session)
                participants = list(db.scalars(select(ProxyParticipant).where(
                    ProxyParticipant.session_pk == detail.pk).order_by(ProxyParticipant.pk)))
                interactions = list(db.scalars(select(ProxyInteraction).where(
                    ProxyInteraction.session_pk == detail.pk)
                    .order_by(ProxyInteraction.pk.desc()).limit(100)))
        return {"services": services, "service": chosen, "sessions": open_sessions,
                "detail": detail, "participants": participants, "interactions": interactions}

    return _page(request, who, "proxy.html", build)


# --- rate plans, Fleets, Network Access Profiles ---------------------------------------------

def _checkbox(values: dict[str, str], name: str) -> bool:
    return values.get(name) == "on"


def _number(values: dict[str, str], name: str, label: str) -> int:
    raw = values.get(name, "").strip()
    if not raw.isdigit():
        raise TwilioError(400, 20001, f"Invalid {label}: must be a whole number")
    return int(raw)


KINDS: dict[str, dict[str, Any]] = {
    "rate-plans": {"title": "Rate plans", "model": RatePlan, "prefix": "WP"},
    "fleets": {"title": "Fleets", "model": Fleet, "prefix": "HF"},
    "network-access-profiles": {"title": "Network Access Profiles",
                                "model": NetworkAccessProfile, "prefix": "HA"},
}


def _params(kind: str, values: dict[str, str], creating: bool) -> dict[str, Any]:
    """The form as the product's service takes it (the API's parameter names and types)."""
    params: dict[str, Any] = {}
    if values.get("unique_name", "") or not creating:
        params["UniqueName"] = values.get("unique_name", "")
    if kind == "rate-plans":
        params["FriendlyName"] = values.get("friendly_name", "")
        if creating:
            params["DataLimit"] = _number(values, "data_limit", "Data limit")
            params["DataEnabled"] = _checkbox(values, "data_enabled")
            params["MessagingEnabled"] = _checkbox(values, "messaging_enabled")
            params["NationalRoamingEnabled"] = _checkbox(values, "national_roaming_enabled")
            if _checkbox(values, "international_roaming"):
                params["InternationalRoaming"] = ["data", "messaging"]
    elif kind == "fleets":
        params["DataLimit"] = _number(values, "data_limit", "Data limit")
        if creating:  # as in the API, only a new Fleet takes DataEnabled
            params["DataEnabled"] = _checkbox(values, "data_enabled")
            params["NetworkAccessProfile"] = values.get("network_access_profile", "")
    return params


def _save(db: DbSession, runtime: Runtime, account_sid: str, kind: str, row: Any,
          values: dict[str, str]) -> Any:
    now = runtime.clock.now()
    params = _params(kind, values, row is None)
    if kind == "rate-plans":
        if row is None:
            return wireless_service.create_rate_plan(db, account_sid, params, now)
        return wireless_service.update_rate_plan(db, row, params, now)
    if kind == "fleets":
        if row is None:
            return supersim_service.create_fleet(db, account_sid, params, now)
        supersim_service.update_fleet(db, runtime, row, params, now)
        return row
    if row is None:
        return supersim_service.create_nap(db, account_sid, params, now)
    supersim_service.update_nap(db, row, params, now)
    return row


def _find(db: DbSession, account_sid: str, kind: str, sid: str) -> Any:
    if kind == "rate-plans":
        return wireless_service.get_rate_plan(db, account_sid, sid)
    if kind == "fleets":
        return supersim_service.get_fleet(db, account_sid, sid)
    return supersim_service.get_nap(db, account_sid, sid)


def _catalogue_values(db: DbSession, account_sid: str, kind: str, edit: str) -> dict:
    model = KINDS[kind]["model"]
    rows = list(db.scalars(select(model).where(model.account_sid == account_sid)
                           .order_by(model.pk).limit(500)))
    naps = {n.pk: n for n in db.scalars(select(NetworkAccessProfile).where(
        NetworkAccessProfile.account_sid == account_sid))} if kind == "fleets" else {}
    return {"kind": kind, "title": KINDS[kind]["title"], "rows": rows, "naps": naps,
            "editing": _find(db, account_sid, kind, edit) if edit else None}


@router.get("/{kind}")
def catalogue(request: Request, who: Who, kind: str, edit: str = "") -> Response:
    if kind not in KINDS:
        return not_found_page(request)
    return _page(request, who, "catalogue.html",
                 lambda db, s: _catalogue_values(db, s.account, kind, edit))


@router.post("/{kind}")
def catalogue_save(request: Request, who: Who, kind: str, values: FormValues) -> Response:
    if kind not in KINDS:
        return not_found_page(request)
    if who.refusal or who.session is None:
        return who.refusal  # type: ignore[return-value]
    runtime = _runtime(request)
    current = who.session
    sid = values.get("sid", "")
    try:
        with runtime.db.write() as db:
            row = _find(db, current.account, kind, sid) if sid else None
            saved = _save(db, runtime, current.account, kind, row, values)
            db.flush()
            saved_sid = saved.sid
    except TwilioError as error:
        with runtime.db.read() as db:
            page_values = _catalogue_values(db, current.account, kind, sid)
            accounts = _account_choices(db, current)
        return render(request, "catalogue.html", error.status, session=current,
                      accounts=accounts, error=error.message, form=values,
                      **page_values)
    return _back(f"/console/{kind}", current, notice=f"Saved {saved_sid}")


# --- static assets ---------------------------------------------------------------------------

@router.api_route("/static/{path:path}", methods=["GET", "HEAD"])
async def static(request: Request, path: str) -> Response:
    response = await STATIC.get_response(path, request.scope)
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
