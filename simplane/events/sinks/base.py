"""What every sink type shares: the event on its way out, the result of a send, checking a
configuration's fields, and one HTTP delivery."""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx

from simplane.core import outbound
from simplane.core.clock import utc
from simplane.core.errors import bad_request
from simplane.core.params import ascii_digits

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime


@dataclass(frozen=True)
class Outgoing:
    """One event on its way to a sink: the CloudEvent and its ordering key."""

    event: dict[str, Any]
    subject: str | None


@dataclass(frozen=True)
class Result:
    delivered: int  # how many events, from the first, the sink accepted
    error: str | None = None
    retry_after: float | None = None  # seconds, when the sink asked for it

    @property
    def ok(self) -> bool:
        return self.error is None


def failure(exc: Exception) -> Result:
    """A send that raised: nothing delivered, the error kept short (it is the sink's
    last_error)."""
    return Result(0, f"{type(exc).__name__}: {exc}"[:200])


def fields(config: dict[str, Any], required: dict[str, type], optional: dict[str, type]) -> None:
    """Check a configuration's field names and types; errors name the field."""
    for name in config:
        if name not in required and name not in optional:
            raise bad_request(f"Invalid SinkConfiguration: unknown field {name!r}")
    for name in required:
        if config.get(name) in (None, ""):
            raise bad_request(f"Missing required field {name!r} in SinkConfiguration")
    for name, kind in {**required, **optional}.items():
        if name in config and not isinstance(config[name], kind):
            raise bad_request(f"Invalid SinkConfiguration.{name}: must be a {kind.__name__}")


def invalid(name: str, why: str) -> Exception:
    return bad_request(f"Invalid SinkConfiguration.{name}: {why}")


def deliver(runtime: Runtime, count: int, method: str, url: str,
            client: httpx.Client | None = None, **request: Any) -> Result:
    """One HTTP delivery of `count` events: all of them accepted on a 2xx, none otherwise.
    `client` is the runtime's, which goes only where the outbound policy allows, unless the
    URL is the operator's own."""
    try:
        response = (client or runtime.http).request(
            method, url, timeout=runtime.settings.callback_timeout, **request)
    except httpx.HTTPError as exc:
        return Result(0, outbound.failure_text(exc))
    if 200 <= response.status_code < 300:
        return Result(count)
    return Result(0, f"HTTP {response.status_code}",
                  retry_after(response.headers.get("retry-after"), runtime))


def retry_after(value: str | None, runtime: Runtime) -> float | None:
    """Retry-After in seconds: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if ascii_digits(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (utc(when) - runtime.clock.now()).total_seconds())
