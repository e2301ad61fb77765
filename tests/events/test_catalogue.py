from __future__ import annotations

import json

import httpx
import jsonschema
import pytest

from simplane.events import catalogue
from tests.events.conftest import ALL_CONNECTION_TYPES, CONNECTION, Fleet
from tests.support import raises


def test_types_list_every_event_simplane_emits(events):  # type: ignore[no-untyped-def]
    types = {t.type: t for t in events.event_types.list()}
    assert set(types) == {catalogue.TEST_EVENT, *ALL_CONNECTION_TYPES}
    assert len(ALL_CONNECTION_TYPES) == 7
    updated = types[CONNECTION + "data-session.updated"]
    assert updated.schema_id == "SuperSim.ConnectionEvent"
    assert updated.status == "available" and updated.description
    assert updated.links["schema"].endswith("/v1/Schemas/SuperSim.ConnectionEvent/Versions")
    assert updated.date_created is not None


def test_types_filter_by_schema_and_page(events):  # type: ignore[no-untyped-def]
    connection = events.event_types.list(schema_id="SuperSim.ConnectionEvent")
    assert {t.type for t in connection} == set(ALL_CONNECTION_TYPES)
    page = events.event_types.page(page_size=3)
    seen = []
    while page is not None:
        seen += [t.type for t in page]
        page = page.next_page()
    assert sorted(seen) == sorted(catalogue.TYPES)
    assert events.event_types.list(schema_id="Nope.Nothing") == []


def test_fetch_type_and_unknown_type(events):  # type: ignore[no-untyped-def]
    t = events.event_types(CONNECTION + "attachment.rejected").fetch()
    assert t.schema_id == "SuperSim.ConnectionEvent"
    assert t.url.endswith("/v1/Types/" + CONNECTION + "attachment.rejected")
    with raises(20404, 404):
        events.event_types("com.example.nothing").fetch()


def test_schema_and_versions_served_as_twilio_does(events, account):  # type: ignore[no-untyped-def]
    schema = events.schemas("SuperSim.ConnectionEvent").fetch()
    assert schema.latest_version == 2
    assert schema.links["versions"].endswith("/Schemas/SuperSim.ConnectionEvent/Versions")
    versions = events.schemas("SuperSim.ConnectionEvent").versions.list()
    assert [v.schema_version for v in versions] == [1, 2]
    v2 = events.schemas("SuperSim.ConnectionEvent").versions(2).fetch()
    assert v2.raw == "https://events-schemas.twilio.com/SuperSim.ConnectionEvent/2"
    # The raw URL, through the simplane client's host rewrite, is the JSON Schema document.
    response = account.client.request("GET", v2.raw)
    document = json.loads(response.text)
    assert document["$id"] == v2.raw
    assert "data_session_data_total" in document["properties"]
    v1 = httpx.get(events.schemas("SuperSim.ConnectionEvent").versions(1).fetch().raw.replace(
        "https://events-schemas.twilio.com", account.server.base_url + "/events-schemas"),
        auth=(account.sid, account.token)).json()
    assert "data_session_data_total" not in v1["properties"]
    with raises(20404, 404):
        events.schemas("SuperSim.ConnectionEvent").versions(3).fetch()
    with raises(20404, 404):
        events.schemas("Nope").fetch()


def test_test_event_schema(events):  # type: ignore[no-untyped-def]
    t = events.event_types(catalogue.TEST_EVENT).fetch()
    assert t.schema_id == "EventStreams.TestSink"
    v = events.schemas("EventStreams.TestSink").versions(1).fetch()
    assert v.raw == "https://events-schemas.twilio.com/EventStreams.TestSink/1.json"


def test_fleet_events_are_valid_and_mistakes_are_caught() -> None:
    fleet = Fleet("AC" + "1" * 32, sims=2)
    rows = fleet.rows(updates=1)
    kinds = {r["type"] for r in rows}
    assert {CONNECTION + k for k in ("attachment.accepted", "data-session.started",
                                     "data-session.updated", "data-session.ended")} == kinds
    updated = next(r["data"] for r in rows if r["type"].endswith("updated"))
    started = next(r["data"] for r in rows if r["type"].endswith("started"))
    accepted = next(r["data"] for r in rows if r["type"].endswith("accepted"))
    bad = [
        (updated["event_type"], {**updated, "data_total": updated["data_total"] + 1}),
        (updated["event_type"], {k: v for k, v in updated.items() if k != "data_upload"}),
        (updated["event_type"], {**updated, "rat_type": "5G"}),
        (updated["event_type"], {**updated, "ip_address": "not-an-ip"}),
        (updated["event_type"], {**updated, "timestamp": "2026-01-01 10:00"}),
        (updated["event_type"], {**updated, "surprise": 1}),
        (started["event_type"], {**started, "data_upload": 5}),
        (accepted["event_type"], {**accepted, "apn": "super"}),
        (accepted["event_type"], {**accepted, "error": {"code": 83705, "message": "inactive"}}),
        (CONNECTION + "attachment.rejected", {**accepted,
                                              "event_type": CONNECTION + "attachment.rejected"}),
        (accepted["event_type"], {k: v for k, v in accepted.items() if k != "sim_iccid"}),
        (updated["event_type"], accepted),  # event_type disagrees with the type
        ("com.example.unknown", accepted),
    ]
    for type_, data in bad:
        with pytest.raises(jsonschema.ValidationError):
            catalogue.validate(type_, data)
    rejected = {**accepted, "event_type": CONNECTION + "attachment.rejected",
                "error": {"code": 83705, "message": "SIM is inactive"}, "imei": None,
                "location": None, "data_modifier": "blocked"}
    catalogue.validate(rejected["event_type"], rejected)
    # Version 1 predates the cumulative counters.
    with pytest.raises(jsonschema.ValidationError):
        catalogue.validate(updated["event_type"], updated, schema_version=1)
    v1 = catalogue.project("SuperSim.ConnectionEvent", 1, updated)
    catalogue.validate(updated["event_type"], v1, schema_version=1)
