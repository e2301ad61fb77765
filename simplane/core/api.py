"""How a product declares its operations: one decorator per spec operation.

The kernel does the rest once for every product: authentication (before a body is read), a
limit on the body's size, typed parameters, one transaction per request (rolled back whole on any
error), status codes from the spec, absolute URLs, metrics and logs.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from simplane.core import params as params_mod
from simplane.core import spec
from simplane.core.errors import TwilioError, too_many_requests, unauthorized
from simplane.core.metrics import observe_request
from simplane.core.models import Account
from simplane.core.params import Params

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

log = logging.getLogger("simplane.http")

Handler = Callable[["Ctx"], Any]
Authenticate = Callable[[Request], Awaitable[str]]
BODY_METHODS = frozenset({"POST", "PATCH", "PUT"})


@dataclass
class Ctx:
    """Everything a handler may use: the caller's account, its parameters and one transaction."""

    runtime: Runtime
    db: Session
    account_sid: str
    operation: spec.Operation
    params: Params
    path: dict[str, str]
    root: str  # scheme://host[/product]: where this product's /v1 lives for this caller
    request_url: str  # absolute URL of this request, without its query
    query_pairs: list[tuple[str, str]]
    body: bytes = b""
    flavour: str = "twilio"  # whose API the caller speaks: "twilio", or "kore" (KORE's hosts)

    @property
    def clock(self):  # type: ignore[no-untyped-def]
        return self.runtime.clock

    def now(self):  # type: ignore[no-untyped-def]
        return self.runtime.clock.now()

    def require_admin(self) -> None:
        require_admin(self.db, self.account_sid)

    def url(self, path: str) -> str:
        """Absolute URL of a path under this product's /v1, e.g. ctx.url("/Sims/DE…")."""
        return f"{self.root}/v1{path}"


def require_admin(db: Session, account_sid: str) -> None:
    """Operator endpoints: only an admin account (the bootstrap one, or one created with
    `simplane accounts create --admin`) may call them."""
    if not db.scalar(select(Account.admin).where(Account.sid == account_sid)):
        raise TwilioError(403, 20403, "This endpoint is for operators: the account is not an "
                          "admin account")


def request_root(request: Request, product: str) -> str:
    """scheme://host as the client saw it (X-Forwarded-Proto/Host honoured), plus /product unless
    the request was routed by its Host header."""
    headers = request.headers
    scheme = headers.get("x-forwarded-proto", request.url.scheme).split(",")[0].strip()
    host = headers.get("x-forwarded-host") or headers.get("host") or request.url.netloc
    host = host.split(",")[0].strip()
    prefix = "" if request.scope.get("simplane.host_routed") else f"/{product}"
    return f"{scheme}://{host}{prefix}"


def basic_credentials(request: Request) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    scheme, _, payload = header.partition(" ")
    if scheme.lower() != "basic":
        raise unauthorized()
    try:
        username, sep, password = base64.b64decode(payload, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized() from None
    if not sep or not username:
        raise unauthorized()
    return username, password


async def authenticate(request: Request) -> str:
    """The account of the request's Basic credentials, before anything else of it is read.

    Credentials verified a moment ago are answered from memory; others are checked against the
    database in a worker thread, unless their source address or SID has failed too often lately
    (429 with Retry-After, without a look at the database). A failed or refused login is
    answered after a delay that holds no thread, so that a client guessing one request after
    another gets few tries and takes little of the server's time."""
    runtime: Runtime = request.app.state.runtime
    authenticator = runtime.authenticator
    username, password = basic_credentials(request)
    account_sid = authenticator.cached(username, password)
    if account_sid is not None:
        return account_sid
    address = request.client.host if request.client else ""
    wait = authenticator.backoff(address, username, password)
    if wait:
        await asyncio.sleep(authenticator.DELAY)
        raise too_many_requests(wait)
    account_sid = await run_in_threadpool(authenticator.verify, username, password)
    if account_sid is None:
        authenticator.failed(username, address)
        await asyncio.sleep(authenticator.DELAY)
        raise unauthorized()
    return account_sid


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to be longer than `limit` bytes:
    from its Content-Length, or while it streams in (chunked)."""
    length = request.headers.get("content-length", "")
    if length.isascii() and length.isdigit() and int(length) > limit:
        raise body_too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def body_too_large(limit: int) -> TwilioError:
    return TwilioError(413, 20413, f"Request body too large: at most {limit} bytes "
                       "(SIMPLANE_MAX_BODY)")


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def error_response(error: TwilioError) -> Response:
    response = json_response(error.body(), error.status)
    response.headers.update(error.headers)
    return response


class ProductAPI:
    """A product's routes, each bound to an operation of the product's official spec.

    Another flavour of the same API (KORE's) is a ProductAPI of its own, with its spec
    (`spec_name`, a file under specs/), its way of authenticating a request (`auth`:
    the request in, the account SID out, or a TwilioError), its error shape (`errors`) and its
    `flavour`, which handlers see as `ctx.flavour`; it may serve this one's handlers, found by
    method and path in `handlers`."""

    def __init__(self, product: str, *, spec_name: str | None = None, flavour: str = "twilio",
                 auth: Authenticate | None = None,
                 errors: Callable[[TwilioError], Response] | None = None) -> None:
        self.product = product
        self.spec_name = spec_name or spec.file_of(product)
        self.flavour = flavour
        self.authenticate: Authenticate = auth or authenticate
        self.errors = errors or error_response
        self.router = APIRouter()
        self.handlers: dict[tuple[str, str], tuple[spec.Operation, Handler]] = {}

    def operation(self, operation_id: str,
                  missing_code: int | None = None) -> Callable[[Handler], Handler]:
        """Bind a handler to an operation of the product's official spec; `missing_code` is the
        product's error code for a required parameter missing, where it has one of its own."""
        op = spec.operations_of(self.spec_name)[operation_id]
        if missing_code is not None:
            op = replace(op, missing_code=missing_code)
        return self._register(op)

    def operator(self, method: str, path: str, status: int = 200, own_transactions: bool = False,
                 max_body: int = 0, form: bool = True) -> Callable[[Handler], Handler]:
        """Bind a handler to an operator endpoint outside the Twilio spec (e.g. a carrier
        simulator or a gateway's ingest), under /{product}{path}, with the same authentication,
        transaction and error handling. Its parameters are in `ctx.params.raw`. A handler that
        must not hold the write lock (it calls out over HTTP between writes) asks for
        `own_transactions` and gets a read-only `ctx.db`. `max_body` raises the body limit for
        this endpoint above SIMPLANE_MAX_BODY (e.g. for a batch of events); a body that is not a
        form (`form=False`, e.g. JSON) is left to the handler, in `ctx.body`."""
        return self._register(spec.Operation(f"{method} {path}", method, path, {}, status,
                                             read_only=own_transactions), max_body, form)

    def bind(self, op: spec.Operation, handler: Handler) -> None:
        """Serve `handler` (another ProductAPI's, say) for `op`, an operation built by the
        caller (from another flavour's spec)."""
        self._register(op)(handler)

    def _register(self, op: spec.Operation, max_body: int = 0,
                  form: bool = True) -> Callable[[Handler], Handler]:
        operation_id = op.operation_id
        route = f"/{self.product}{op.path}"

        form = form and not op.json_body
        authenticate_request = self.authenticate
        errors = self.errors
        has_body = op.method in BODY_METHODS

        def register(handler: Handler) -> Handler:
            waits = inspect.iscoroutinefunction(handler)
            self.handlers.setdefault((op.method, op.path), (op, handler))

            async def endpoint(request: Request) -> Response:
                started = time.perf_counter()
                account_sid = None
                try:
                    account_sid = await authenticate_request(request)
                    body = b""
                    if has_body:
                        limit = max(request.app.state.runtime.settings.max_body, max_body)
                        body = await read_body(request, limit)
                except TwilioError as error:
                    self._log(request, error.status, account_sid, error.code)
                    response = errors(error)
                    if has_body:  # what is left of the body is not read: hang up
                        response.headers["connection"] = "close"
                else:
                    if waits:
                        response = await self.handle_async(request, op, handler, body,
                                                           account_sid, form)
                    else:
                        response = await run_in_threadpool(self.handle, request, op, handler,
                                                           body, account_sid, form)
                observe_request(op.method, route, response.status_code, time.perf_counter() - started)
                return response

            endpoint.__name__ = operation_id
            self.router.add_api_route(route, endpoint, methods=[op.method], name=operation_id,
                                      include_in_schema=False)
            return handler

        return register

    def handle(self, request: Request, op: spec.Operation, handler: Handler, body: bytes,
               account_sid: str, form: bool = True) -> Response:
        """The request of an authenticated caller, whose body has been read."""
        runtime: Runtime = request.app.state.runtime
        try:
            args = self._arguments(request, runtime, op, body, form)
            reads = op.method == "GET" or op.read_only
            session = runtime.db.read if reads else runtime.db.write
            with session() as db:
                result = handler(Ctx(runtime, db, account_sid, op, *args, flavour=self.flavour))
        except TwilioError as error:
            self._log(request, error.status, account_sid, error.code)
            return self.errors(error)
        return self._respond(request, op, result, account_sid)

    async def handle_async(self, request: Request, op: spec.Operation, handler: Handler,
                           body: bytes, account_sid: str, form: bool = True) -> Response:
        """An `async def` handler waits on the network (a tenant's callback) without holding
        one of the threads that serve requests: the parameters are parsed on a thread, then the
        handler runs on the event loop and takes its own transactions (on threads); its
        `ctx.db` is bound to no database."""
        runtime: Runtime = request.app.state.runtime
        try:
            args = await run_in_threadpool(self._arguments, request, runtime, op, body, form)
            result = await handler(Ctx(runtime, Session(), account_sid, op, *args,
                                       flavour=self.flavour))
        except TwilioError as error:
            self._log(request, error.status, account_sid, error.code)
            return self.errors(error)
        return self._respond(request, op, result, account_sid)

    def _arguments(self, request: Request, runtime: Runtime, op: spec.Operation, body: bytes,
                   form: bool) -> tuple[Params, dict[str, str], str, str,
                                        list[tuple[str, str]], bytes]:
        """The rest of a Ctx, after its database session: the parameters, path values, root,
        request URL, query and body."""
        query_pairs = params_mod.form_pairs(request.scope["query_string"], "query string")
        pairs = query_pairs if op.method not in BODY_METHODS or not form else (
            query_pairs + params_mod.form_pairs(body, "post body"))
        where = "post body" if op.method in BODY_METHODS else "query string"
        parsed = params_mod.parse(op.params, pairs, where, op.missing_code, runtime.outbound)
        root = request_root(request, self.product)
        path_values = {k: str(v) for k, v in request.path_params.items()}
        if any("\x00" in v for v in path_values.values()):  # names no resource, on any engine
            raise TwilioError(404, 20404, "The requested resource was not found")
        request_url = root + op.path.format(
            **{k: quote(v, safe="") for k, v in path_values.items()})
        return parsed, path_values, root, request_url, query_pairs, body

    @staticmethod
    def _respond(request: Request, op: spec.Operation, result: Any,
                 account_sid: str | None) -> Response:
        if isinstance(result, Response):
            response = result
        elif result is None:
            response = Response(status_code=204)
        else:
            response = json_response(result, op.success_status)
        ProductAPI._log(request, response.status_code, account_sid)
        return response

    @staticmethod
    def _log(request: Request, status: int, account_sid: str | None, code: int | None = None) -> None:
        if status < 400 and (sample := request.app.state.runtime.settings.log_sample) < 1 \
                and (sample == 0 or random.random() >= sample):
            return
        if log.isEnabledFor(logging.INFO):
            log.info("request", extra={"fields": {
                "method": request.method, "path": request.url.path, "status": status,
                "account_sid": account_sid, "code": code,
            }})
