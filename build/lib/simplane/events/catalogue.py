"""The event types simplane emits and the JSON Schemas of their data.

Each type names a schema id; each schema has numbered versions, stored as JSON Schema documents
in `schemas/{id}.{version}.json` and served as Twilio serves them (`/v1/Schemas/{id}/Versions/{n}`).

    from simplane.events import catalogue
    catalogue.validate("com.twilio.iot.supersim.connection.data-session.updated", data)

`validate` raises `jsonschema.ValidationError` when `data` does not match the latest version of
its type's schema (or fails a rule a schema cannot state, such as a total that is not the sum of
its parts); compiled validators are cached.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

SCHEMAS = Path(__file__).resolve().parent / "schemas"
SCHEMA_HOST = "https://events-schemas.twilio.com"
SUPERSIM_DOCS = "https://www.twilio.com/docs/iot/supersim/connection-events"


@dataclass(frozen=True)
class SchemaVersion:
    schema_id: str
    version: int
    date_created: datetime
    dataschema: str  # the URL Twilio puts in an event's `dataschema` (and the document's $id)


@dataclass(frozen=True)
class EventType:
    type: str
    schema_id: str
    description: str
    date_created: datetime
    source: str  # the CloudEvents `source`; {id} is replaced by the event's id
    status: str = "available"
    documentation_url: str | None = None


def _date(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


VERSIONS: dict[str, list[SchemaVersion]] = {
    "EventStreams.TestSink": [
        SchemaVersion("EventStreams.TestSink", 1, _date("2020-08-13T13:28:20"),
                      f"{SCHEMA_HOST}/EventStreams.TestSink/1.json"),
    ],
    "SuperSim.ConnectionEvent": [
        SchemaVersion("SuperSim.ConnectionEvent", 1, _date("2021-06-16T00:00:00"),
                      f"{SCHEMA_HOST}/SuperSim.ConnectionEvent/1"),
        # v2 (June 2022) adds the cumulative data_session_data_* counters.
        SchemaVersion("SuperSim.ConnectionEvent", 2, _date("2022-06-21T00:00:00"),
                      f"{SCHEMA_HOST}/SuperSim.ConnectionEvent/2"),
    ],
}

TEST_EVENT = "com.twilio.eventstreams.test-event"
CONNECTION = "com.twilio.iot.supersim.connection."
_CONNECTION_TYPES = {
    "attachment.accepted": "Super SIM attached to a cellular network and is allowed to connect",
    "attachment.rejected": "Super SIM attachment request was rejected by the network",
    "attachment.failed": "Super SIM attachment request failed for an unknown reason",
    "data-session.started": "Super SIM data session started on a valid APN",
    "data-session.updated": "Super SIM data session still up: usage since the last update",
    "data-session.ended": "Super SIM data session ended",
    "data-session.failed": "Super SIM data session could not be created or maintained",
}

TYPES: dict[str, EventType] = {
    TEST_EVENT: EventType(TEST_EVENT, "EventStreams.TestSink", "Event Streams- sink test event",
                          _date("2020-08-13T13:28:20"), "Sink"),
    **{
        CONNECTION + name: EventType(
            CONNECTION + name, "SuperSim.ConnectionEvent", f"Super SIM- {text}",
            _date("2021-06-16T00:00:00"), "/v1/SuperSim/ConnectionEvents/{id}",
            documentation_url=SUPERSIM_DOCS)
        for name, text in _CONNECTION_TYPES.items()
    },
}


def event_type(type_: str) -> EventType | None:
    return TYPES.get(type_)


def versions(schema_id: str) -> list[SchemaVersion]:
    return VERSIONS.get(schema_id, [])


def latest(schema_id: str) -> SchemaVersion:
    return VERSIONS[schema_id][-1]


def version(schema_id: str, number: int) -> SchemaVersion | None:
    return next((v for v in versions(schema_id) if v.version == number), None)


@cache
def document(schema_id: str, number: int) -> dict[str, Any]:
    """The JSON Schema document of one version."""
    return json.loads((SCHEMAS / f"{schema_id}.{number}.json").read_text())


@cache
def _validator(schema_id: str, number: int) -> Draft202012Validator:
    schema = document(schema_id, number)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@cache
def _fields(schema_id: str, number: int) -> frozenset[str]:
    return frozenset(document(schema_id, number)["properties"])


_SUMS = (("data_total", "data_upload", "data_download"),
         ("data_session_data_total", "data_session_data_upload", "data_session_data_download"))


def validate(type_: str, data: dict[str, Any], schema_version: int | None = None) -> None:
    """Raise jsonschema.ValidationError unless `data` is valid for `type_` (latest version by
    default)."""
    kind = TYPES.get(type_)
    if kind is None:
        raise jsonschema.ValidationError(f"{type_!r} is not an event type simplane emits")
    number = schema_version or latest(kind.schema_id).version
    _validator(kind.schema_id, number).validate(data)
    if data.get("event_type", type_) != type_:
        raise jsonschema.ValidationError(
            f"event_type {data['event_type']!r} does not match the event's type {type_!r}")
    for total, *parts in _SUMS:
        if total in data and all(p in data for p in parts) and data[total] != sum(
                data[p] for p in parts):
            raise jsonschema.ValidationError(f"{total} is not the sum of {' and '.join(parts)}")


def project(schema_id: str, number: int, data: dict[str, Any]) -> dict[str, Any]:
    """The data as an older schema version carries it: without the fields it did not have."""
    if number == latest(schema_id).version:
        return data
    keep = _fields(schema_id, number)
    return {k: v for k, v in data.items() if k in keep}
