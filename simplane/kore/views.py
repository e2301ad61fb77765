"""KORE's routes: Super SIM and Programmable Wireless served by the very handlers of Twilio's
flavour (bound by method and path to the operations of KORE's specs), KORE's client API, the
OAuth token endpoint, and the webhook API's place (`webhook`, whose handlers live in
`kore/webhooks.py`).

A KORE operation takes the Twilio operation's typed parameters that KORE's spec also has, with
KORE's limits where they are tighter (`PageSize` at most 100 on IpCommands, 249 on Super SIM
UsageRecords), and KORE's success status; Programmable Wireless answers are reshaped to KORE's
schemas (`shapes.py`). Authentication is a bearer token whose client may use the product
(`auth.py`)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from simplane.core import spec
from simplane.core.accounts import accounts_in_reach
from simplane.core.api import Ctx, Handler, ProductAPI, json_response, read_body
from simplane.core.errors import TwilioError, bad_request
from simplane.core.params import form_pairs, json_value
from simplane.kore import errors, routing, service, tokens
from simplane.kore.apis import client, supersim, webhook, wireless
from simplane.kore.auth import current_grant
from simplane.kore.models import ApiClient
from simplane.kore.shapes import Shaper, response_schema
from simplane.supersim import views as supersim_views
from simplane.wireless import views as wireless_views

# Where KORE's spec offers two success statuses, the one simplane answers: a Command is accepted
# for delivery later (202); a Command deleted is gone (204).
STATUS = {"sendCommand": 202, "deleteCommand": 204}


def _pattern(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _params(twilio: spec.Operation, kore: spec.Operation) -> dict[str, spec.Param]:
    """Twilio's typed parameters that KORE's operation has too, with KORE's tighter maximum."""
    params = {}
    for name, param in twilio.params.items():
        theirs = kore.params.get(name)
        if param.location != "path" and theirs is None:
            continue  # not in KORE's API (Programmable Wireless RatePlans' DataLimitStrategy)
        most = theirs.schema.get("maximum") if theirs is not None else None
        if most is not None and most < param.schema.get("maximum", most + 1):
            param = replace(param, schema={**param.schema, "maximum": most})
        params[name] = param
    return params


def serve_same(kore_api: ProductAPI, twilio_api: ProductAPI, reshape: bool) -> None:
    """Bind every operation of `kore_api`'s spec to the handler `twilio_api` serves for the
    same method and path."""
    handlers = {(method, _pattern(path)): bound
                for (method, path), bound in twilio_api.handlers.items()}
    shaper = Shaper(kore_api.spec_name)
    for kore_op in spec.operations_of(kore_api.spec_name).values():
        twilio_op, handler = handlers[(kore_op.method, _pattern(kore_op.path))]
        status = STATUS.get(kore_op.operation_id, kore_op.success_status)
        op = replace(twilio_op, operation_id=kore_op.operation_id,
                     params=_params(twilio_op, kore_op), success_status=status)
        if reshape:
            schema = response_schema(kore_api.spec_name, kore_op.path, kore_op.method, status)
            handler = _shaped(handler, shaper, schema)
        kore_api.bind(op, handler)


def _shaped(handler: Handler, shaper: Shaper, schema: dict[str, Any]) -> Handler:
    def shaped(ctx: Ctx) -> Any:
        result = handler(ctx)
        return shaper.conform(result, schema) if isinstance(result, dict) and schema else result

    shaped.__name__ = getattr(handler, "__name__", "shaped")
    return shaped


serve_same(supersim, supersim_views.api, reshape=False)
serve_same(wireless, wireless_views.api, reshape=True)


# --- the client API (kore_client_v1.json) ------------------------------------------------------

def client_json(c: ApiClient) -> dict:
    return {"client_id": c.client_id, "account_id": service.account_id(c.account_sid),
            "name": c.name, "client_owner": c.client_owner or "", "client_type": c.client_type,
            "locked": c.locked, "date_created": service.rfc1123(c.date_created)}


@client.operation("getPingStatus")
def ping(ctx: Ctx) -> dict:
    return {"status": "ok"}


@client.operation("listClient")
def list_clients(ctx: Ctx) -> dict:
    size, number = ctx.params["page_size"], ctx.params["page_number"]
    if size > 1000:
        raise bad_request("Invalid page_size: must be at most 1000")
    stmt = service.active(ctx.db, ctx.account_sid)
    if "client_type" in ctx.params:
        stmt = stmt.where(ApiClient.client_type == ctx.params["client_type"])
    count = ctx.db.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = ctx.db.scalars(stmt.order_by(ApiClient.pk).offset((number - 1) * size)
                          .limit(size)).all()
    meta: dict[str, Any] = {"count": count, "page_number": number, "page_size": size}

    def page(n: int) -> str:
        query = [(k, v) for k, v in ctx.query_pairs if k not in ("page_size", "page_number")]
        return f"{ctx.request_url}?{urlencode([*query, ('page_size', size), ('page_number', n)])}"

    if number > 1:
        meta["previous_page_url"] = page(number - 1)
    if number * size < count:
        meta["next_page_url"] = page(number + 1)
    return {"meta": meta, "clients": [client_json(c) for c in rows]}


@client.operation("getClient")
def get_client(ctx: Ctx) -> dict:
    return {"client": client_json(service.get_client(ctx.db, ctx.account_sid,
                                                     ctx.path["client_id"]))}


@client.operation("createClient")
def create_client(ctx: Ctx) -> dict:
    """A standard client of the caller's account (or a subaccount's), for products the calling
    client has; only an admin client may create clients."""
    grant = current_grant.get()
    if grant is None or grant.client_type != "admin":
        raise TwilioError(403, 20403, "Forbidden: only an admin client may create clients")
    try:
        body = json_value(ctx.body or b"null")
    except ValueError:
        raise bad_request("Invalid body: not JSON") from None
    if not isinstance(body, dict):
        raise bad_request("Invalid body: must be a JSON object with name, locked and scopes")
    unknown = sorted(set(body) - {"account_id", "name", "locked", "scopes"})
    if unknown:
        raise bad_request(f"Invalid body: unknown field {unknown[0]}")
    name, locked, scopes = body.get("name"), body.get("locked"), body.get("scopes")
    if not isinstance(name, str) or not name.strip() or len(name) > 255 or "\x00" in name:
        raise bad_request("Invalid name: give a name of 1 to 255 characters")
    if locked is not None and not isinstance(locked, bool):
        raise bad_request("Invalid locked: must be true, false or null")
    if not isinstance(scopes, dict) or not isinstance(scopes.get("products"), list) or not all(
            isinstance(p, str) for p in scopes["products"]):
        raise bad_request("Invalid scopes: give {\"products\": [\"SuperSIM\", …]}")
    products = service.products_of(scopes["products"])
    if not set(products) <= grant.products:
        raise TwilioError(403, 20403, "Forbidden: a client may only be given the products of "
                          "the client creating it")
    account_sid = ctx.account_sid
    if body.get("account_id") is not None:
        wanted = service.account_sid_of(str(body["account_id"]))
        if wanted is None or wanted not in accounts_in_reach(ctx.db, ctx.account_sid):
            raise TwilioError(404, 20404, f"The requested resource account "
                              f"{body['account_id']} was not found")
        account_sid = wanted
    made, secret = service.create_client(ctx.db, ctx.runtime.box, ctx.clock, account_sid,
                                         name=name, products=products, locked=bool(locked),
                                         lifetime=_lifetime_of(ctx, grant.client_id))
    return {"message": "Client created successfully", "client_id": made.client_id,
            "client_secret": secret, "client_type": made.client_type,
            "account_id": service.account_id(made.account_sid), "name": made.name,
            "date_created": made.date_created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "client_owner": made.client_owner or "", "locked": made.locked}


def _lifetime_of(ctx: Ctx, client_id: str) -> int:
    """A client made through the API gets the token lifetime of the client making it."""
    return ctx.db.scalar(select(ApiClient.lifetime).where(ApiClient.client_id == client_id)) \
        or service.LIFETIMES["1h"]


# --- the token endpoint (kore_token_api_v1.json) -----------------------------------------------

token_router = APIRouter()
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    """client_id and client_secret from HTTP Basic (client_secret_basic, each form-encoded) or
    from the form (client_secret_post); ("", "") when neither has them."""
    scheme, _, payload = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            user, sep, password = base64.b64decode(payload.strip(), validate=True).decode() \
                .partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        return (unquote(user), unquote(password)) if sep else ("", "")
    return form.get("client_id", ""), form.get("client_secret", "")


@token_router.post(routing.TOKEN_PATH, include_in_schema=False)
async def token(request: Request) -> Response:
    runtime = request.app.state.runtime
    try:
        raw = await read_body(request, runtime.settings.max_body)
        form = dict(form_pairs(raw, "post body"))
    except TwilioError as error:
        response = errors.token_error(error.status, error.message)
        response.headers["connection"] = "close"
        return response
    grant_type = form.get("grant_type", "")
    if grant_type != "client_credentials":
        return errors.token_error(400, "Invalid grant_type: give client_credentials"
                                  if grant_type else "Missing required parameter grant_type")
    client_id, secret = _client_credentials(request, form)
    if not client_id or not secret:
        return errors.invalid_client("Missing client_id or client_secret")
    authenticator = runtime.authenticator
    address = request.client.host if request.client else ""
    wait = authenticator.backoff(address, client_id, secret)
    if wait:
        await asyncio.sleep(authenticator.DELAY)
        return errors.token_error(429, "Too many failed attempts; retry later",
                                  {"Retry-After": str(wait)})
    issued = await run_in_threadpool(_issue, runtime, client_id, secret)
    if issued is None:
        authenticator.failed(client_id, address)
        await asyncio.sleep(authenticator.DELAY)
        return errors.invalid_client()
    access_token, lifetime, products = issued
    response = json_response({"access_token": access_token, "expires_in": lifetime,
                              "token_type": "Bearer", "scope": " ".join(products)})
    response.headers.update(NO_STORE)
    return response


CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Authorization, Content-Type",
        "Access-Control-Allow-Credentials": "false"}


@token_router.options(routing.TOKEN_PATH, include_in_schema=False)
async def token_preflight(request: Request) -> Response:
    """CORS preflight, as KORE's spec documents it for the token endpoint."""
    return Response(status_code=200, headers=CORS)


def _issue(runtime: Any, client_id: str, secret: str) -> tuple[str, int, list[str]] | None:
    with runtime.db.read() as db:
        found = service.check_credentials(db, runtime.box, client_id, secret)
        if found is None:
            return None
        now: datetime = runtime.clock.now()
        return tokens.issue(runtime.box, found, now), found.lifetime, list(found.products)


# --- one router for all of it --------------------------------------------------------------

from simplane.kore import webhooks  # noqa: E402,F401  the webhook API's handlers, on `webhook`


class _Routes:
    """All of KORE's routes in one router, side by side (not nested: a nested router is one
    more level to match through on every request)."""

    def __init__(self, *routers: APIRouter) -> None:
        self.router = APIRouter()
        for each in routers:
            self.router.routes.extend(each.routes)


api = _Routes(*(each.router for each in (supersim, wireless, webhook, client)), token_router)
