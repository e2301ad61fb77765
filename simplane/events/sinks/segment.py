"""Segment sinks: events as `track` calls through Segment's HTTP tracking API (batch endpoint),
authenticated with the sink's write key. SIMPLANE_SEGMENT_URL points it elsewhere."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from simplane.events.outbox import event_time
from simplane.events.sinks.base import Outgoing, Result, deliver, fields

if TYPE_CHECKING:
    from simplane.config import Settings
    from simplane.core.runtime import Runtime

MAX_EVENTS = 100  # keeps a batch well under Segment's 500 KB limit


def configure(config: dict[str, Any]) -> dict[str, Any]:
    fields(config, {"write_key": str}, {})
    return {"write_key": config["write_key"]}


def batch_limit(config: dict[str, Any], settings: Settings) -> int:
    return min(settings.events_batch_size, MAX_EVENTS)


def track(event: Outgoing) -> dict[str, Any]:
    ce = event.event
    return {
        "type": "track", "event": ce["type"], "messageId": ce["id"], "timestamp": ce["time"],
        "anonymousId": event.subject or ce["source"],
        "properties": ce["data"] if isinstance(ce["data"], dict) else {"data": ce["data"]},
        "context": {"library": {"name": "simplane-event-streams", "version": "1.0"},
                    "cloudevents": {k: v for k, v in ce.items() if k != "data"}},
    }


def send(runtime: Runtime, config: dict[str, Any], events: list[Outgoing], token: str) -> Result:
    body = orjson.dumps({"batch": [track(e) for e in events],
                         "sentAt": event_time(runtime.clock.now())})
    url = runtime.settings.segment_url.rstrip("/") + "/v1/batch"
    return deliver(runtime, len(events), "POST", url, runtime.http_trusted, content=body,
                   auth=(config["write_key"], ""),
                   headers={"Content-Type": "application/json",
                            "User-Agent": "simplane-event-streams"})
