"""Event Streams rules: sinks and their validation flow, subscriptions and their event types."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from simplane.core.errors import bad_request, conflict, not_found
from simplane.core.lookups import get_by_sid
from simplane.core.outbound import Policy
from simplane.core.params import Params, json_value
from simplane.core.secrets import SecretBox
from simplane.core.sids import new_sid
from simplane.events import catalogue, outbox, sinks
from simplane.events.models import EventSink, EventSubscribedEvent, EventSubscription

MAX_DESCRIPTION = 255
SINK_STATUSES = ("initialized", "validating", "active", "failed")
# Webhook sinks are active from the start; the others wait for Test and Validate (Twilio's Sink
# Validate docs: Kinesis sinks are `initialized` by default, webhook sinks `active`).
ACTIVE_ON_CREATION = ("webhook",)


def description(value: str) -> str:
    if not value.strip():
        raise bad_request("Invalid Description: must not be empty")
    if len(value) > MAX_DESCRIPTION:
        raise bad_request(f"Invalid Description: at most {MAX_DESCRIPTION} characters")
    return value


# --- Sinks -----------------------------------------------------------------------------------

def get_sink(db: Session, account_sid: str, sid: str) -> EventSink:
    return get_by_sid(db, EventSink, account_sid, sid, "DG", "Sink")


def configuration(box: SecretBox, sink: EventSink) -> dict[str, Any]:
    """A sink's configuration, decrypted."""
    return orjson.loads(box.open(sink.sink_configuration_sealed))


def create_sink(db: Session, box: SecretBox, account_sid: str, params: Params,
                now: datetime, policy: Policy | None = None) -> EventSink:
    config = params["SinkConfiguration"]
    if isinstance(config, str):  # not JSON at all: the kernel passed the text through
        raise bad_request("Invalid SinkConfiguration: must be a JSON object")
    config = sinks.configure(params["SinkType"], config, policy)
    txid, pk = outbox.position(db)  # a sink receives what is published from now on
    sink = EventSink(
        sid=new_sid("DG"), account_sid=account_sid, description=description(params["Description"]),
        sink_type=params["SinkType"],
        status="active" if params["SinkType"] in ACTIVE_ON_CREATION else "initialized",
        sink_configuration_sealed=box.seal(orjson.dumps(config).decode()),
        test_pending=False, cursor_txid=txid, cursor_pk=pk, attempts=0, next_attempt_at=now,
        date_created=now, date_updated=now)
    db.add(sink)
    db.flush()
    return sink


def in_use(db: Session, sink: EventSink) -> bool:
    return bool(db.scalar(select(exists().where(EventSubscription.sink_pk == sink.pk))))


def delete_sink(db: Session, sink: EventSink) -> None:
    if in_use(db, sink):
        raise conflict(f"Sink with SID {sink.sid} is in use: delete its subscriptions first")
    db.delete(sink)


def test_sink(db: Session, sink: EventSink, now: datetime) -> None:
    """Send a test event carrying a new test_id; only the latest test_id validates the sink."""
    sink.test_id = str(uuid.uuid4())
    sink.test_pending = True
    if sink.status != "active":  # an active sink's failures keep counting toward its horizon
        sink.status = "validating"
        sink.attempts, sink.failing_since = 0, None
    sink.next_attempt_at = now
    sink.date_updated = now


def validate_sink(sink: EventSink, test_id: str, now: datetime) -> None:
    if sink.test_id is None:
        raise bad_request(f"Invalid TestId: no test event was sent to Sink {sink.sid}: "
                          "POST to its Test resource first")
    if test_id != sink.test_id:
        raise bad_request(f"Invalid TestId: {test_id!r} is not the test_id of the latest test "
                          f"event sent to Sink {sink.sid}")
    if sink.status != "active":
        sink.status = "active"
        sink.attempts, sink.failing_since, sink.next_attempt_at = 0, None, now
    sink.date_updated = now


# --- Subscriptions ---------------------------------------------------------------------------

def get_subscription(db: Session, account_sid: str, sid: str) -> EventSubscription:
    return get_by_sid(db, EventSubscription, account_sid, sid, "DF", "Subscription")


def _parse_type(raw: Any) -> tuple[str, int | None]:
    value = raw
    if isinstance(raw, str):
        try:
            value = json_value(raw)
        except ValueError:
            value = {"type": raw}  # a bare type name
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise bad_request("Invalid Types: each element must be a JSON object with a \"type\" "
                          "(and optionally a \"schema_version\")")
    version = value.get("schema_version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise bad_request(f"Invalid Types: schema_version of {value['type']!r} must be an "
                          "integer")
    return value["type"], version


def check_type(type_: str, version: int | None, name: str, version_name: str) -> int:
    """The schema version to subscribe to (the latest by default), or a 400 naming the
    parameter at fault."""
    kind = catalogue.event_type(type_)
    if kind is None or type_ == catalogue.TEST_EVENT:
        raise bad_request(f"Invalid {name}: {type_!r} is not an event type that can be "
                          "subscribed to (see /v1/Types)")
    if version is None:
        return catalogue.latest(kind.schema_id).version
    if catalogue.version(kind.schema_id, version) is None:
        raise bad_request(f"Invalid {version_name}: schema version {version} of "
                          f"{kind.schema_id} does not exist for {type_!r}")
    return version


def create_subscription(db: Session, account_sid: str, params: Params,
                        now: datetime) -> EventSubscription:
    sink_sid = params["SinkSid"]
    sink = db.scalar(select(EventSink).where(EventSink.sid == sink_sid,
                                             EventSink.account_sid == account_sid))
    if sink is None:
        raise bad_request(f"Invalid SinkSid: Sink {sink_sid} was not found")
    if sink.status != "active":
        raise bad_request(f"Invalid SinkSid: Sink {sink_sid} is {sink.status}: a Sink must be "
                          "active for a Subscription to be created")
    wanted: dict[str, int] = {}
    for raw in params["Types"]:
        type_, version = _parse_type(raw)
        if type_ in wanted:
            raise bad_request(f"Invalid Types: {type_!r} is given twice")
        wanted[type_] = check_type(type_, version, "Types", "Types")
    if not wanted:
        raise bad_request("Missing required parameter Types in the post body")
    sub = EventSubscription(sid=new_sid("DF"), account_sid=account_sid, sink_pk=sink.pk,
                            sink_sid=sink.sid, description=description(params["Description"]),
                            date_created=now, date_updated=now)
    db.add(sub)
    db.flush()
    since = outbox.position(db)
    for type_, version in wanted.items():
        _add_type(db, sub, type_, version, since)
    db.flush()
    return sub


def _add_type(db: Session, sub: EventSubscription, type_: str, version: int,
              since: outbox.Position) -> EventSubscribedEvent:
    row = EventSubscribedEvent(subscription_pk=sub.pk, account_sid=sub.account_sid, type=type_,
                               schema_version=version, since_txid=since[0], since_pk=since[1])
    db.add(row)
    return row


def delete_subscription(db: Session, sub: EventSubscription) -> None:
    db.execute(delete(EventSubscribedEvent).where(EventSubscribedEvent.subscription_pk == sub.pk))
    db.delete(sub)


def get_subscribed_event(db: Session, sub: EventSubscription, type_: str) -> EventSubscribedEvent:
    row = db.scalar(select(EventSubscribedEvent).where(
        EventSubscribedEvent.subscription_pk == sub.pk, EventSubscribedEvent.type == type_))
    if row is None:
        raise not_found("SubscribedEvent", type_)
    return row


def add_subscribed_event(db: Session, sub: EventSubscription, params: Params,
                         now: datetime) -> tuple[EventSubscribedEvent, bool]:
    """Subscribe to one more type; (row, created). An existing type gets the given version."""
    type_ = params["Type"]
    version = check_type(type_, params.get("SchemaVersion"), "Type", "SchemaVersion")
    existing = db.scalar(select(EventSubscribedEvent).where(
        EventSubscribedEvent.subscription_pk == sub.pk, EventSubscribedEvent.type == type_))
    sub.date_updated = now
    if existing is not None:
        if "SchemaVersion" in params:
            existing.schema_version = version
        return existing, False
    row = _add_type(db, sub, type_, version, outbox.position(db))
    db.flush()
    return row, True


def update_subscribed_event(db: Session, sub: EventSubscription, row: EventSubscribedEvent,
                            params: Params, now: datetime) -> None:
    if "SchemaVersion" in params:
        row.schema_version = check_type(row.type, params["SchemaVersion"], "Type",
                                        "SchemaVersion")
        sub.date_updated = now

