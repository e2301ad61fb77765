"""Schemathesis over KORE's Webhook API spec (kore-webhook-v1.json) with a bearer token: whatever
a client sends, never a 5xx, and every answer as the spec describes it."""

from __future__ import annotations

import copy

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import response_schema_conformance

from simplane.core.spec import load_file
from tests.kore.conftest import new_client, token_of
from tests.kore.hooks import create_secret

EXAMPLES = 30
TRANSPORT = {"authorization", "accept", "content-type"}  # the spec lists them as parameters


def webhook_spec() -> dict:
    """KORE's spec, without the header parameters that describe the transport (the token is
    the test's; the body is JSON as the spec says)."""
    document = copy.deepcopy(load_file("kore/kore-webhook-v1.json"))
    for item in document["paths"].values():
        for op in item.values():
            op["parameters"] = [p for p in op.get("parameters", [])
                                if not (p["in"] == "header" and p["name"].lower() in TRANSPORT)]
    return document


def test_no_server_errors_and_answers_as_specified(server, account):
    token = token_of(server, new_client(server, account.sid))
    create_secret(server, account, "active")
    create_secret(server, account, "pending")
    schema = schemathesis.openapi.from_dict(webhook_spec())
    schema.config.update(base_url=f"{server.base_url}/kore/webhook")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 3

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):  # type: ignore[no-untyped-def]
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            assert response.status_code < 500, (case.method, case.formatted_path, response.text)
            case.validate_response(response, checks=[response_schema_conformance])
            if response.status_code >= 400:
                body = response.json()
                assert set(body) == {"status", "code", "message", "info"}
                assert body["status"] == response.status_code

        check()
