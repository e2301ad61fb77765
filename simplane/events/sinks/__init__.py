"""Sink types: how each validates its sink_configuration and delivers a batch of events.

A sink module has `configure(config) -> dict` (the configuration as stored, or a 400 naming the
bad field), `batch_limit(config, settings) -> int` and `send(runtime, config, events, token)`,
which delivers the events in order and returns a `Result` (`token` is the account's auth
token, for signatures).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from simplane.core import outbound
from simplane.core.errors import bad_request
from simplane.events.sinks.base import Outgoing, Result, failure, invalid

__all__ = ["Outgoing", "Result", "configure", "failure", "module"]


def module(sink_type: str) -> ModuleType:
    from simplane.events.sinks import kinesis, segment, webhook

    modules = {"webhook": webhook, "kinesis": kinesis, "segment": segment}
    if sink_type not in modules:
        raise bad_request(f"Invalid SinkType: {sink_type!r} sinks are not supported "
                          f"(supported: {', '.join(modules)})")
    return modules[sink_type]


def configure(sink_type: str, config: Any, policy: outbound.Policy | None = None
              ) -> dict[str, Any]:
    """The configuration as stored; a destination URL whose host is an IP address outside the
    outbound `policy` is a 400."""
    if not isinstance(config, dict):
        raise bad_request("Invalid SinkConfiguration: must be a JSON object")
    stored: dict[str, Any] = module(sink_type).configure(config)
    destination = stored.get("destination")
    if policy is not None and destination and not policy.check_literal(destination):
        raise invalid("destination", "is an address outside the outbound policy "
                      "(SIMPLANE_OUTBOUND_ALLOW)")
    return stored
