"""The ASGI application: every product on one port, plus /healthz, /metrics and /openapi.json.

/metrics is read by admin accounts (Basic auth) or with the bearer token SIMPLANE_METRICS_TOKEN;
`serve --metrics-address` also serves it, without authentication, on an address of its own.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import inspect
import logging
import os
import re
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from simplane import products
from simplane.console import views as console
from simplane.core import spec
from simplane.core.api import authenticate, error_response, json_response, require_admin
from simplane.core.dispatch import Dispatch
from simplane.core.errors import TwilioError, too_many_requests, unauthorized
from simplane.core.metrics import REGISTRY
from simplane.core.runtime import Runtime

log = logging.getLogger("simplane.app")

PROCESS = str(os.getpid())
_PRODUCT_HOST = re.compile(r"^(?P<product>[a-z]+)(\.[a-z0-9-]+)*\.twilio\.com(:[0-9]+)?$")


class HostRouting:
    """`GET /v1/Sims` with `Host: wireless.twilio.com` is `GET /wireless/v1/Sims`; a host of
    another flavour's (`hosts`: host → (the path it must start with, its prefix)) likewise:
    `Host: supersim.api.korewireless.com` makes `/v1/Sims` `/kore/supersim/v1/Sims`."""

    def __init__(self, app: ASGIApp, names: list[str],
                 hosts: dict[str, tuple[str, str]] | None = None) -> None:
        self.app = app
        self.names = set(names)
        self.hosts = hosts or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
            host = host.lower()
            prefix = None
            if path.startswith("/v1/"):
                match = _PRODUCT_HOST.match(host)
                if match and match.group("product") in self.names:
                    prefix = "/" + match.group("product")
            if prefix is None and self.hosts:
                starts, to = self.hosts.get(host.rpartition(":")[0] if ":" in host else host,
                                            ("", ""))
                if starts and path.startswith(starts):
                    prefix = to
            if prefix is not None:
                scope = dict(scope, path=prefix + path,
                             raw_path=prefix.encode() + scope.get("raw_path", path.encode()))
                scope["simplane.host_routed"] = True
        await self.app(scope, receive, send)


def _console(request: Request) -> bool:
    path = request.url.path
    return path == "/console" or path.startswith("/console/")


# FastAPI's OpenTelemetry instrumentation looks for providers on every request; without any
# configured when the application is made (opentelemetry-instrument configures them before),
# it is off.
NO_TELEMETRY: Any = {"tracing": False, "metrics": False, "logs": False}


def _opentelemetry() -> bool:
    """Whether OpenTelemetry providers are configured (other than its default proxies)."""
    try:
        from opentelemetry import _logs, metrics, trace
    except ImportError:
        return False
    providers = (trace.get_tracer_provider(), metrics.get_meter_provider(),
                 _logs.get_logger_provider())
    return any(not type(p).__name__.lstrip("_").startswith(("Proxy", "NoOp"))
               for p in providers)


def create_app(runtime: Runtime | None = None) -> FastAPI:
    runtime = runtime or Runtime()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # type: ignore[no-untyped-def]
        runtime.start()
        # What start-up loaded (specs, schemas, catalogues) lives as long as the process: keep
        # it out of the collector's generations, so full collections stay short.
        gc.collect()
        gc.freeze()
        yield
        runtime.worker.stop()
        await runtime.http_async.aclose()  # its connections belong to this event loop

    app = FastAPI(title="simplane", openapi_url=None, docs_url=None, redoc_url=None,
                  lifespan=lifespan, telemetry=None if _opentelemetry() else NO_TELEMETRY)
    app.state.runtime = runtime
    for module in products.modules():
        app.include_router(module.api.router)
    app.include_router(console.router)
    products.register(runtime.worker)

    document = spec.public_document(products.NAMES)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> Response:
        return json_response(document)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        try:
            with runtime.db.read() as db:
                db.execute(text("SELECT 1"))
        except Exception:
            log.exception("health check failed")
            return json_response({"status": "unavailable", "database": "down"}, 503)
        response = json_response({"status": "ok", "database": "up"})
        response.headers["Simplane-Process"] = PROCESS  # which of `serve --workers` answered
        return response

    def admin(account_sid: str) -> None:
        with runtime.db.read() as db:
            require_admin(db, account_sid)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            await check_metrics_token(request, token.strip())
        else:
            await run_in_threadpool(admin, await authenticate(request))
        return Response(await run_in_threadpool(generate_latest, REGISTRY),
                        media_type=CONTENT_TYPE_LATEST)

    async def check_metrics_token(request: Request, token: str) -> None:
        """The bearer token SIMPLANE_METRICS_TOKEN, with the back-off of failed logins."""
        authenticator = runtime.authenticator
        expected = runtime.settings.metrics_token
        address = request.client.host if request.client else ""
        wait = authenticator.backoff(address)
        if wait:
            await asyncio.sleep(authenticator.DELAY)
            raise too_many_requests(wait)
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            authenticator.failed(None, address)
            await asyncio.sleep(authenticator.DELAY)
            raise unauthorized()

    @app.exception_handler(TwilioError)
    async def twilio_error(_request: Request, exc: TwilioError) -> Response:
        return error_response(exc)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if _console(request):
            return console.error_page(request, exc.status_code, "There is no such page in the "
                                      "console." if exc.status_code == 404 else str(exc.detail))
        if exc.status_code == 404:
            return error_response(TwilioError(404, 20404, "The requested resource was not found"))
        if exc.status_code == 405:
            return error_response(TwilioError(405, 20004, "Method not allowed"))
        return error_response(TwilioError(exc.status_code, exc.status_code, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> Response:
        return error_response(TwilioError(400, 20001, "Invalid request"))

    @app.exception_handler(IntegrityError)
    async def integrity_error(_request: Request, exc: IntegrityError) -> Response:
        return error_response(TwilioError(409, 20001, "The request conflicts with an existing resource"))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.error("unhandled error", exc_info=exc)
        if _console(request):
            return console.error_page(request, 500, "The console could not show this page; "
                                      "the error is in the server's log.")
        return error_response(TwilioError(500, 20500, "Internal Server Error"))

    async def on_error(request: Request, exc: Exception) -> Response:
        """What the application's exception handlers answer for `exc`."""
        for kind in type(exc).__mro__:
            handler = app.exception_handlers.get(kind)
            if handler is not None:
                response = handler(request, exc)
                return await response if inspect.isawaitable(response) else response
        raise exc

    app.add_middleware(Dispatch, routes=lambda: app.router.routes, on_error=on_error)
    # outside Dispatch: paths rewritten
    app.add_middleware(HostRouting, names=products.NAMES, hosts=products.hosts())
    return app
