"""Prometheus metrics shared by every product."""

from __future__ import annotations

from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "simplane_http_requests", "HTTP requests answered, by route", ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "simplane_http_request_seconds", "HTTP request latency, by route", ["method", "route"],
    registry=REGISTRY, buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
CALLBACKS = Counter(
    "simplane_callbacks", "Outbound callbacks, by outcome", ["outcome"], registry=REGISTRY,
)


# The counter and histogram of each (method, route, status) seen: labels() takes a lock and
# builds its key on every call.
_REQUEST_METRICS: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    found = _REQUEST_METRICS.get((method, route, status))
    if found is None:
        found = _REQUEST_METRICS[(method, route, status)] = (
            REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route))
    found[0].inc()
    found[1].observe(seconds)


def serve_metrics(address: str) -> WSGIServer:
    """/metrics, without authentication, on an address of its own (HOST:PORT, [IPv6]:PORT),
    served by a thread of prometheus_client's; ValueError for an address that is not one."""
    host, _, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not (port.isascii() and port.isdigit()) or not 0 <= int(port) < 65536:
        raise ValueError(f"{address!r} is not HOST:PORT")
    server, _thread = start_http_server(int(port), addr=host, registry=REGISTRY)
    return server
