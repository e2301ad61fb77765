"""A direct way to the products' operations, in front of the framework's router.

Starlette tries each of several hundred routes in turn, and FastAPI wraps every call in its
dependency machinery; a product operation's endpoint (`ProductAPI`) needs neither: it takes the
request and returns a response, its errors already in Twilio's shape. `Dispatch` finds it by the
first segments of the path (a dict) and one or two regular expressions, and calls it. Anything
it does not find that way (another route, a method the route does not take, a path with a
trailing slash) goes through the framework as before, which answers it (404, 405, redirect, the
console, /metrics…); an exception out of an endpoint gets the application's exception handler,
as it would there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

KEY_SEGMENTS = 3  # /wireless/v1/Sims


def _key(path: str) -> tuple[str, ...] | None:
    parts = path.split("/", KEY_SEGMENTS + 1)[1:KEY_SEGMENTS + 1]
    return tuple(parts) if len(parts) == KEY_SEGMENTS else None


def flatten(routes: list[BaseRoute]) -> list[BaseRoute]:
    """The routes, with those of routers included without a prefix or dependencies (FastAPI
    keeps them as one entry) in their place."""
    flat: list[BaseRoute] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        context = getattr(route, "include_context", None)
        if inner is not None and context is not None and not context.prefix \
                and not context.dependencies:
            flat += flatten(inner.routes)
        else:
            flat.append(route)
    return flat


class Dispatch:
    """ASGI middleware: calls the endpoints marked `direct` itself (see module docstring)."""

    def __init__(self, app: ASGIApp, routes: Callable[[], list[BaseRoute]],
                 on_error: Callable[[Request, Exception], Awaitable[Response]]) -> None:
        self.app = app
        self._routes = routes
        self._on_error = on_error
        self._table: dict[tuple[str, ...], list[Route]] | None = None
        self._wild: dict[str, list[Any]] = {}  # routes with a path_regex

    def _build(self) -> dict[tuple[str, ...], list[Route]]:
        """Routes by their first segments, in the router's order. Routes with a parameter in
        those segments, and mounts, are kept apart by their first segment (`_wild`): a path
        they match is left to the router; so is every path when a route is of a kind this does
        not know. A route of fewer segments without a `path` parameter matches no path that
        has these segments, and is left out."""
        table: dict[tuple[str, ...], list[Route]] = {}
        self._wild = {}
        for route in flatten(self._routes()):
            path = getattr(route, "path", None)
            if path is None or not hasattr(route, "path_regex"):
                return {}
            key = _key(path) if isinstance(route, Route) else None
            if key is not None and not any("{" in part for part in key):
                table.setdefault(key, []).append(route)  # type: ignore[arg-type]
            elif key is not None or ":path}" in path or not isinstance(route, Route):
                first = path.split("/", 2)[1] if path.count("/") > 1 else ""
                self._wild.setdefault("" if "{" in first else first, []).append(route)
        return table

    def match(self, method: str, path: str) -> tuple[Any, dict[str, str]] | None:
        """The direct endpoint for this request and its path values, or None."""
        table = self._table
        if table is None:
            table = self._table = self._build()
        key = _key(path)
        candidates = table.get(key) if key is not None else None
        if not candidates or method == "HEAD":
            return None
        for wild in (self._wild.get(key[0]), self._wild.get("")):  # type: ignore[index]
            if wild and any(route.path_regex.match(path) for route in wild):
                return None
        for route in candidates:  # the first whose path and method match, as the router
            if method not in (route.methods or ()):
                continue
            found = route.path_regex.match(path)
            if found is None:
                continue
            endpoint = route.endpoint
            if not getattr(endpoint, "direct", False) or any(
                    type(c).__name__ != "StringConvertor"
                    for c in route.param_convertors.values()):
                return None
            return endpoint, found.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            found = self.match(scope["method"], scope["path"])
            if found is not None:
                endpoint, path_params = found
                scope["path_params"] = path_params
                request = Request(scope, receive, send)
                try:
                    response = await endpoint(request)
                except Exception as exc:  # noqa: BLE001 - the application answers it
                    response = await self._on_error(request, exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
