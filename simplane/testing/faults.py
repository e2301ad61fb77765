"""Faults a test asks for: a sink whose deliveries fail, a network that refuses a SIM, a device
that takes its commands late.

Sink failures are made where simplane's outbound HTTP leaves the process (the transport of its
HTTP client), so the delivery code sees a real answer: the status, and Retry-After when given.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import httpx

from simplane.core.clock import Duration


@dataclass
class Failure:
    url: str  # requests to this URL (scheme, host, port, path; any query) fail
    status: int
    retry_after: float | None
    times: int | None  # None: until the test ends


def _target(url: str | httpx.URL) -> str:
    parts = urlsplit(str(url))
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


class FailingTransport(httpx.BaseTransport):
    """Passes requests on, but answers those the failures name itself."""

    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.failures: list[Failure] = []
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        failure = self._take(_target(request.url))
        if failure is None:
            return self.inner.handle_request(request)
        headers = {} if failure.retry_after is None else {
            "Retry-After": str(int(failure.retry_after))}
        return httpx.Response(failure.status, headers=headers, request=request)

    def _take(self, target: str) -> Failure | None:
        with self.lock:
            for failure in self.failures:
                if failure.url == target:
                    if failure.times is not None:
                        failure.times -= 1
                        if failure.times <= 0:
                            self.failures.remove(failure)
                    return failure
        return None

    def close(self) -> None:
        self.inner.close()


class Faults:
    """`simplane.faults`: what goes wrong in this test (all of it undone by reset)."""

    def __init__(self, transport: FailingTransport, sink_url: Callable[[str], str]) -> None:
        self._transport = transport
        self._sink_url = sink_url
        self.refused: dict[str, int | None] = {}  # SIM SID → attachments left to refuse
        self.delays: dict[str, Duration] = {}  # SIM SID → how late its device takes commands

    def fail_sink(self, sink: str, times: int | None = 1, status: int = 500,
                  retry_after: float | None = None) -> None:
        """The next `times` deliveries to an Event Streams sink (its SID; a webhook or Segment
        sink) get HTTP `status`, with Retry-After `retry_after` seconds when given; `times=None`
        fails every delivery until the test ends."""
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None: every delivery)")
        url = self._sink_url(sink)
        with self._transport.lock:
            self._transport.failures.append(Failure(_target(url), status, retry_after, times))

    def fail_url(self, url: str, times: int | None = 1, status: int = 500,
                 retry_after: float | None = None) -> None:
        """The same for any URL simplane calls (a status callback, a Proxy webhook)."""
        with self._transport.lock:
            self._transport.failures.append(Failure(_target(url), status, retry_after, times))

    def refuse_attachment(self, sim: str, times: int | None = None) -> None:
        """The network refuses the SIM's device when it attaches (`times` attachments, or every
        one until the test ends): ingest hears `attachment.rejected`."""
        self.refused[sim] = times

    def delay_commands(self, sim: str, by: Duration | timedelta | float | str) -> None:
        """The SIM's device takes each Wireless Command sent to it `by` (a timedelta, seconds,
        or text such as "15m") after it was created, on the test's clock: until then the
        command stays `queued`, even with the device attached. `simplane.clock.advance` stops
        at that moment on the way."""
        self.delays[sim] = Duration.of(by)

    def refuses(self, sim: str) -> bool:
        """Whether the network refuses this attachment (counting it)."""
        if sim not in self.refused:
            return False
        left = self.refused[sim]
        if left is not None:
            if left <= 1:
                del self.refused[sim]
            else:
                self.refused[sim] = left - 1
        return True

    def clear(self) -> None:
        with self._transport.lock:
            self._transport.failures.clear()
        self.refused.clear()
        self.delays.clear()

