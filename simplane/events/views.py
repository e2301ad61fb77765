"""Event Streams v1 routes and representations, one handler per operation of the spec, plus the
JSON Schema documents at /events-schemas/{id}/{version} (where the simplane client takes
https://events-schemas.twilio.com/..., the URL in every event's `dataschema`)."""

from __future__ import annotations

from fastapi.responses import Response
from sqlalchemy import exists, select

from simplane.core.api import Ctx, ProductAPI, json_response
from simplane.core.clock import iso
from simplane.core.errors import bad_request, not_found
from simplane.core.paging import page_of_list, paginate
from simplane.core.params import ascii_digits
from simplane.events import catalogue
from simplane.events import service as svc
from simplane.events.models import EventSink, EventSubscribedEvent, EventSubscription

api = ProductAPI("events")
schemas_api = ProductAPI("events-schemas")


# --- representations -------------------------------------------------------------------------

def type_json(ctx: Ctx, t: catalogue.EventType) -> dict:
    return {
        "type": t.type, "schema_id": t.schema_id, "date_created": iso(t.date_created),
        "date_updated": iso(t.date_created), "description": t.description, "status": t.status,
        "documentation_url": t.documentation_url, "url": ctx.url(f"/Types/{t.type}"),
        "links": {"schema": ctx.url(f"/Schemas/{t.schema_id}/Versions")},
    }


def schema_json(ctx: Ctx, schema_id: str) -> dict:
    latest = catalogue.latest(schema_id)
    return {
        "id": schema_id, "url": ctx.url(f"/Schemas/{schema_id}"),
        "links": {"versions": ctx.url(f"/Schemas/{schema_id}/Versions")},
        "latest_version_date_created": iso(latest.date_created),
        "latest_version": latest.version,
    }


def schema_version_json(ctx: Ctx, v: catalogue.SchemaVersion) -> dict:
    return {
        "id": v.schema_id, "schema_version": v.version, "date_created": iso(v.date_created),
        "url": ctx.url(f"/Schemas/{v.schema_id}/Versions/{v.version}"), "raw": v.dataschema,
    }


def sink_json(ctx: Ctx, s: EventSink) -> dict:
    url = ctx.url(f"/Sinks/{s.sid}")
    return {
        "date_created": iso(s.date_created), "date_updated": iso(s.date_updated),
        "description": s.description, "sid": s.sid,
        "sink_configuration": svc.configuration(ctx.runtime.box, s),
        "sink_type": s.sink_type, "status": s.status, "url": url,
        "links": {"sink_test": f"{url}/Test", "sink_validate": f"{url}/Validate"},
    }


def subscription_json(ctx: Ctx, s: EventSubscription) -> dict:
    url = ctx.url(f"/Subscriptions/{s.sid}")
    return {
        "account_sid": s.account_sid, "sid": s.sid, "date_created": iso(s.date_created),
        "date_updated": iso(s.date_updated), "description": s.description,
        "sink_sid": s.sink_sid, "url": url,
        "links": {"subscribed_events": f"{url}/SubscribedEvents"},
    }


def subscribed_event_json(ctx: Ctx, sub: EventSubscription, e: EventSubscribedEvent) -> dict:
    return {
        "account_sid": e.account_sid, "type": e.type, "schema_version": e.schema_version,
        "subscription_sid": sub.sid,
        "url": ctx.url(f"/Subscriptions/{sub.sid}/SubscribedEvents/{e.type}"),
    }


# --- the catalogue: static lists, paged by position ------------------------------------------

@api.operation("ListEventType")
def list_types(ctx: Ctx) -> dict:
    schema_id = ctx.params.get("SchemaId")
    types = [t for t in catalogue.TYPES.values() if schema_id in (None, t.schema_id)]
    return page_of_list(ctx, types, lambda t: type_json(ctx, t))


@api.operation("FetchEventType")
def fetch_type(ctx: Ctx) -> dict:
    kind = catalogue.event_type(ctx.path["Type"])
    if kind is None:
        raise not_found("Type", ctx.path["Type"])
    return type_json(ctx, kind)


def _schema_id(ctx: Ctx) -> str:
    if not catalogue.versions(ctx.path["Id"]):
        raise not_found("Schema", ctx.path["Id"])
    return ctx.path["Id"]


def _version(schema_id: str, raw: str) -> catalogue.SchemaVersion:
    number = raw.removesuffix(".json")
    found = catalogue.version(schema_id, int(number)) if ascii_digits(number) else None
    if found is None:
        raise not_found("Schema version", f"{schema_id}/{raw}")
    return found


@api.operation("FetchSchema")
def fetch_schema(ctx: Ctx) -> dict:
    return schema_json(ctx, _schema_id(ctx))


@api.operation("ListSchemaVersion")
def list_schema_versions(ctx: Ctx) -> dict:
    schema_id = _schema_id(ctx)
    return page_of_list(ctx, catalogue.versions(schema_id), lambda v: schema_version_json(ctx, v))


@api.operation("FetchSchemaVersion")
def fetch_schema_version(ctx: Ctx) -> dict:
    schema_id = _schema_id(ctx)
    return schema_version_json(ctx, _version(schema_id, ctx.path["SchemaVersion"]))


@schemas_api.operator("GET", "/{Id}/{Version}")
def raw_schema(ctx: Ctx) -> Response:
    version = _version(_schema_id(ctx), ctx.path["Version"])
    return json_response(catalogue.document(version.schema_id, version.version))


api.router.include_router(schemas_api.router)


# --- Sinks -----------------------------------------------------------------------------------

def _sink(ctx: Ctx) -> EventSink:
    return svc.get_sink(ctx.db, ctx.account_sid, ctx.path["Sid"])


@api.operation("CreateSink")
def create_sink(ctx: Ctx) -> dict:
    return sink_json(ctx, svc.create_sink(ctx.db, ctx.runtime.box, ctx.account_sid, ctx.params,
                                         ctx.now(), ctx.runtime.outbound))


@api.operation("FetchSink")
def fetch_sink(ctx: Ctx) -> dict:
    return sink_json(ctx, _sink(ctx))


@api.operation("ListSink")
def list_sinks(ctx: Ctx) -> dict:
    stmt = select(EventSink).where(EventSink.account_sid == ctx.account_sid)
    if "Status" in ctx.params:
        if ctx.params["Status"] not in svc.SINK_STATUSES:
            raise bad_request(f"Invalid Status: {ctx.params['Status']!r} is not one of "
                              f"{', '.join(svc.SINK_STATUSES)}")
        stmt = stmt.where(EventSink.status == ctx.params["Status"])
    if "InUse" in ctx.params:
        used = exists().where(EventSubscription.sink_pk == EventSink.pk)
        stmt = stmt.where(used if ctx.params["InUse"] else ~used)
    return paginate(ctx, stmt, EventSink.pk, lambda s: sink_json(ctx, s))


@api.operation("UpdateSink")
def update_sink(ctx: Ctx) -> dict:
    sink = _sink(ctx)
    sink.description = svc.description(ctx.params["Description"])
    sink.date_updated = ctx.now()
    ctx.db.flush()
    return sink_json(ctx, sink)


@api.operation("DeleteSink")
def delete_sink(ctx: Ctx) -> None:
    svc.delete_sink(ctx.db, _sink(ctx))


@api.operation("CreateSinkTest")
def create_sink_test(ctx: Ctx) -> Response:
    svc.test_sink(ctx.db, _sink(ctx), ctx.now())
    ctx.runtime.worker.wake_after_commit(ctx.db)
    return json_response({"result": "submitted"}, 201)


@api.operation("CreateSinkValidate")
def create_sink_validate(ctx: Ctx) -> dict:
    svc.validate_sink(_sink(ctx), ctx.params["TestId"], ctx.now())
    return {"result": "valid"}


# --- Subscriptions ---------------------------------------------------------------------------

def _subscription(ctx: Ctx, name: str = "Sid") -> EventSubscription:
    return svc.get_subscription(ctx.db, ctx.account_sid, ctx.path[name])


@api.operation("CreateSubscription")
def create_subscription(ctx: Ctx) -> dict:
    return subscription_json(ctx, svc.create_subscription(ctx.db, ctx.account_sid, ctx.params,
                                                          ctx.now()))


@api.operation("FetchSubscription")
def fetch_subscription(ctx: Ctx) -> dict:
    return subscription_json(ctx, _subscription(ctx))


@api.operation("ListSubscription")
def list_subscriptions(ctx: Ctx) -> dict:
    stmt = select(EventSubscription).where(EventSubscription.account_sid == ctx.account_sid)
    if "SinkSid" in ctx.params:
        stmt = stmt.where(EventSubscription.sink_sid == ctx.params["SinkSid"])
    return paginate(ctx, stmt, EventSubscription.pk, lambda s: subscription_json(ctx, s))


@api.operation("UpdateSubscription")
def update_subscription(ctx: Ctx) -> dict:
    sub = _subscription(ctx)
    if "Description" in ctx.params:
        sub.description = svc.description(ctx.params["Description"])
    sub.date_updated = ctx.now()
    ctx.db.flush()
    return subscription_json(ctx, sub)


@api.operation("DeleteSubscription")
def delete_subscription(ctx: Ctx) -> None:
    svc.delete_subscription(ctx.db, _subscription(ctx))


# --- SubscribedEvents ------------------------------------------------------------------------

@api.operation("ListSubscribedEvent")
def list_subscribed_events(ctx: Ctx) -> dict:
    sub = _subscription(ctx, "SubscriptionSid")
    stmt = select(EventSubscribedEvent).where(EventSubscribedEvent.subscription_pk == sub.pk)
    return paginate(ctx, stmt, EventSubscribedEvent.pk,
                    lambda e: subscribed_event_json(ctx, sub, e))


@api.operation("CreateSubscribedEvent")
def create_subscribed_event(ctx: Ctx) -> Response:
    sub = _subscription(ctx, "SubscriptionSid")
    row, created = svc.add_subscribed_event(ctx.db, sub, ctx.params, ctx.now())
    ctx.db.flush()
    return json_response(subscribed_event_json(ctx, sub, row), 201 if created else 200)


@api.operation("FetchSubscribedEvent")
def fetch_subscribed_event(ctx: Ctx) -> dict:
    sub = _subscription(ctx, "SubscriptionSid")
    return subscribed_event_json(ctx, sub, svc.get_subscribed_event(ctx.db, sub, ctx.path["Type"]))


@api.operation("UpdateSubscribedEvent")
def update_subscribed_event(ctx: Ctx) -> dict:
    sub = _subscription(ctx, "SubscriptionSid")
    row = svc.get_subscribed_event(ctx.db, sub, ctx.path["Type"])
    svc.update_subscribed_event(ctx.db, sub, row, ctx.params, ctx.now())
    ctx.db.flush()
    return subscribed_event_json(ctx, sub, row)


@api.operation("DeleteSubscribedEvent")
def delete_subscribed_event(ctx: Ctx) -> None:
    sub = _subscription(ctx, "SubscriptionSid")
    ctx.db.delete(svc.get_subscribed_event(ctx.db, sub, ctx.path["Type"]))
    sub.date_updated = ctx.now()
