"""Schemathesis over the server's own /openapi.json: whatever a client sends, never a 5xx, and
every error in Twilio's shape."""

from __future__ import annotations

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import response_schema_conformance

EXAMPLES = 20


def test_no_server_errors(server):  # type: ignore[no-untyped-def]
    account = server.new_account()
    account.client.wireless.v1.rate_plans.create(unique_name="plan")
    server.provision(account.sid, 5, status="active", rate_plan="plan")
    document = httpx.get(f"{server.base_url}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=server.base_url)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 16

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):  # type: ignore[no-untyped-def]
            response = case.call(auth=(account.sid, account.token))
            assert response.status_code < 500, (case.method, case.formatted_path, response.text)
            case.validate_response(response, checks=[response_schema_conformance])
            if response.status_code >= 400:
                body = response.json()
                assert set(body) == {"code", "message", "more_info", "status"}
                assert body["status"] == response.status_code

        check()
