"""How a product declares its operations: one decorator per spec operation.

The kernel does the rest once for every product: authentication, typed parameters, one
transaction per request (rolled back whole on any error), status codes from the spec, absolute
URLs, metrics and logs.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from simplane.core import params as params_mod
from simplane.core import spec
from simplane.core.errors import TwilioError, unauthorized
from simplane.core.metrics import observe_request
from simplane.core.models import Account
from simplane.core.params import Params

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

log = logging.getLogger("simplane.http")

Handler = Callable[["Ctx"], Any]


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

    @property
    def clock(self):  # type: ignore[no-untyped-def]
        return self.runtime.clock

    def now(self):  # type: ignore[no-untyped-def]
        return self.runtime.clock.now()

    def require_admin(self) -> None:
        """Operator endpoints: only an admin account (the bootstrap one, or one created with
        `simplane accounts create --admin`) may call them."""
        if not self.db.scalar(select(Account.admin).where(Account.sid == self.account_sid)):
            raise TwilioError(403, 20403, "This endpoint is for operators: the account is not an "
                              "admin account")

    def url(self, path: str) -> str:
        """Absolute URL of a path under this product's /v1, e.g. ctx.url("/Sims/DE…")."""
        return f"{self.root}/v1{path}"


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


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def error_response(error: TwilioError) -> Response:
    return json_response(error.body(), error.status)


class ProductAPI:
    """A product's routes, each bound to an operation of the product's official spec."""

    def __init__(self, product: str) -> None:
        self.product = product
        self.router = APIRouter()

    def operation(self, operation_id: str,
                  missing_code: int | None = None) -> Callable[[Handler], Handler]:
        """Bind a handler to an operation of the product's official spec; `missing_code` is the
        product's error code for a required parameter missing, where it has one of its own."""
        op = spec.operations(self.product)[operation_id]
        if missing_code is not None:
            op = replace(op, missing_code=missing_code)
        return self._register(op)

    def operator(self, method: str, path: str, status: int = 200,
                 own_transactions: bool = False) -> Callable[[Handler], Handler]:
        """Bind a handler to an operator endpoint outside the Twilio spec (e.g. a carrier
        simulator or a gateway's ingest), under /{product}{path}, with the same authentication,
        transaction and error handling. Its parameters are in `ctx.params.raw`. A handler that
        must not hold the write lock (it calls out over HTTP between writes) asks for
        `own_transactions` and gets a read-only `ctx.db`."""
        return self._register(spec.Operation(f"{method} {path}", method, path, {}, status,
                                             read_only=own_transactions))

    def _register(self, op: spec.Operation) -> Callable[[Handler], Handler]:
        operation_id = op.operation_id
        route = f"/{self.product}{op.path}"

        def register(handler: Handler) -> Handler:
            waits = inspect.iscoroutinefunction(handler)

            async def endpoint(request: Request) -> Response:
                started = time.perf_counter()
                body = await request.body() if op.method == "POST" else b""
                if waits:
                    response = await self.handle_async(request, op, handler, body)
                else:
                    response = await run_in_threadpool(self.handle, request, op, handler, body)
                observe_request(op.method, route, response.status_code, time.perf_counter() - started)
                return response

            endpoint.__name__ = operation_id
            self.router.add_api_route(route, endpoint, methods=[op.method], name=operation_id,
                                      include_in_schema=False)
            return handler

        return register

    def handle(self, request: Request, op: spec.Operation, handler: Handler, body: bytes) -> Response:
        runtime: Runtime = request.app.state.runtime
        account_sid = None
        try:
            account_sid = self._authenticate(request, runtime)
            args = self._arguments(request, runtime, op, body)
            reads = op.method == "GET" or op.read_only
            session = runtime.db.read if reads else runtime.db.write
            with session() as db:
                result = handler(Ctx(runtime, db, account_sid, op, *args))
        except TwilioError as error:
            self._log(request, error.status, account_sid, error.code)
            return error_response(error)
        return self._respond(request, op, result, account_sid)

    async def handle_async(self, request: Request, op: spec.Operation, handler: Handler,
                           body: bytes) -> Response:
        """An `async def` handler waits on the network (a tenant's callback) without holding
        one of the threads that serve requests: the caller is authenticated and the parameters
        parsed on a thread, then the handler runs on the event loop and takes its own
        transactions (on threads); its `ctx.db` is bound to no database."""
        runtime: Runtime = request.app.state.runtime
        account_sid: str | None = None

        def prepare() -> tuple[str, tuple[Params, dict[str, str], str, str,
                                          list[tuple[str, str]], bytes]]:
            nonlocal account_sid
            account_sid = self._authenticate(request, runtime)
            return account_sid, self._arguments(request, runtime, op, body)

        try:
            caller, args = await run_in_threadpool(prepare)
            result = await handler(Ctx(runtime, Session(), caller, op, *args))
        except TwilioError as error:
            self._log(request, error.status, account_sid, error.code)
            return error_response(error)
        return self._respond(request, op, result, account_sid)

    @staticmethod
    def _authenticate(request: Request, runtime: Runtime) -> str:
        """The caller's account SID."""
        username, password = basic_credentials(request)
        account_sid = runtime.authenticator.authenticate(runtime.db.read, username, password)
        if account_sid is None:
            raise unauthorized()
        return account_sid

    def _arguments(self, request: Request, runtime: Runtime, op: spec.Operation, body: bytes
                   ) -> tuple[Params, dict[str, str], str, str, list[tuple[str, str]], bytes]:
        """The rest of a Ctx, after its database session: the parameters, path values, root,
        request URL, query and body."""
        query_pairs = parse_qsl(request.url.query, keep_blank_values=True)
        pairs = query_pairs if op.method != "POST" else query_pairs + parse_qsl(
            body.decode("utf-8", "replace"), keep_blank_values=True)
        where = "post body" if op.method == "POST" else "query string"
        parsed = params_mod.parse(op.params, pairs, where, op.missing_code, runtime.outbound)
        root = request_root(request, self.product)
        path_values = {k: str(v) for k, v in request.path_params.items()}
        if any("\x00" in v for v in path_values.values()):  # names no resource, on any engine
            raise TwilioError(404, 20404, "The requested resource was not found")
        request_url = root + op.path.format(
            **{k: quote(v, safe="") for k, v in path_values.items()})
        return parsed, path_values, root, request_url, query_pairs, body

    def _respond(self, request: Request, op: spec.Operation, result: Any,
                 account_sid: str | None) -> Response:
        if isinstance(result, Response):
            response = result
        elif result is None:
            response = Response(status_code=204)
        else:
            response = json_response(result, op.success_status)
        self._log(request, response.status_code, account_sid)
        return response

    @staticmethod
    def _log(request: Request, status: int, account_sid: str | None, code: int | None = None) -> None:
        if log.isEnabledFor(logging.INFO):
            log.info("request", extra={"fields": {
                "method": request.method, "path": request.url.path, "status": status,
                "account_sid": account_sid, "code": code,
            }})
