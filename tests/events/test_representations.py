"""Every response carries exactly the fields of the spec's schema."""

from __future__ import annotations

import json

import httpx

from simplane.core.spec import resource_fields
from tests.events.conftest import CONNECTION, active_webhook, subscribe


def body(account, path: str, method: str = "GET", data: dict | None = None) -> dict:  # type: ignore[no-untyped-def]
    response = httpx.request(method, f"{account.server.base_url}/events/v1{path}", data=data,
                             auth=(account.sid, account.token))
    assert response.status_code < 300, response.text
    return response.json()


def test_every_representation_has_the_spec_fields(account, server, receiver):  # type: ignore[no-untyped-def]
    def fields(name: str) -> set[str]:
        return set(resource_fields("events", name))

    sink = active_webhook(account, server, receiver)
    sub = subscribe(account, sink, [CONNECTION + "data-session.ended"])
    checks = {
        "events.v1.event_type": body(account, f"/Types/{CONNECTION}attachment.accepted"),
        "events.v1.schema": body(account, "/Schemas/SuperSim.ConnectionEvent"),
        "events.v1.schema.schema_version": body(account,
                                                "/Schemas/SuperSim.ConnectionEvent/Versions/2"),
        "events.v1.sink": body(account, f"/Sinks/{sink.sid}"),
        "events.v1.sink.sink_test": body(account, f"/Sinks/{sink.sid}/Test", "POST"),
        "events.v1.subscription": body(account, f"/Subscriptions/{sub.sid}"),
        "events.v1.subscription.subscribed_event": body(
            account, f"/Subscriptions/{sub.sid}/SubscribedEvents/{CONNECTION}data-session.ended"),
    }
    for schema, got in checks.items():
        assert set(got) == fields(schema), (schema, set(got) ^ fields(schema))
    server.drain()
    test_id = json.loads(receiver.get().body)[0]["data"]["test_id"]
    validated = body(account, f"/Sinks/{sink.sid}/Validate", "POST", {"TestId": test_id})
    assert set(validated) == fields("events.v1.sink.sink_validate")
    assert body(account, "/Types?PageSize=2")["meta"]["key"] == "types"
    assert body(account, f"/Subscriptions/{sub.sid}/SubscribedEvents")["meta"]["key"] == "types"
    assert body(account, "/Schemas/SuperSim.ConnectionEvent/Versions")["meta"]["key"] == (
        "schema_versions")
