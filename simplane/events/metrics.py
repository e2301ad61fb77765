"""Event Streams metrics in /metrics, per sink: backlog, delivered, retried and failed events,
and the latency from publication to the sink's acknowledgement."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

from simplane.core.metrics import REGISTRY

if TYPE_CHECKING:
    from simplane.events.models import EventSink

EVENTS = Counter(
    "simplane_event_deliveries", "Events by sink and outcome: delivered; retried (in a send "
    "that failed and will be retried); failed (held back when the sink was marked failed)",
    ["sink_sid", "sink_type", "outcome"], registry=REGISTRY,
)
BACKLOG = Gauge(
    "simplane_event_backlog", "Events in the outbox past the sink's cursor (capped at 100,000)",
    ["sink_sid", "sink_type"], registry=REGISTRY,
)
LATENCY = Histogram(
    "simplane_event_delivery_latency_seconds", "From publication to the sink's acknowledgement",
    ["sink_type"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)


def delivered(sink: EventSink, published_at: list[float]) -> None:
    EVENTS.labels(sink.sid, sink.sink_type, "delivered").inc(len(published_at))
    now = time.time()
    histogram = LATENCY.labels(sink.sink_type)
    for when in published_at:
        histogram.observe(max(0.0, now - when))


def retried(sink: EventSink, count: int) -> None:
    EVENTS.labels(sink.sid, sink.sink_type, "retried").inc(count)


def failed(sink: EventSink, count: int) -> None:
    EVENTS.labels(sink.sid, sink.sink_type, "failed").inc(count)


def backlog(sink: EventSink, count: int) -> None:
    BACKLOG.labels(sink.sid, sink.sink_type).set(count)
