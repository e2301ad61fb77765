"""Schemathesis over KORE's own specs (Super SIM, Programmable Wireless, the client API and the
token endpoint), as served under /kore/: whatever a client sends, never a 5xx, and every answer
in the shape KORE's schema gives it."""

from __future__ import annotations

import copy
import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import response_schema_conformance

from simplane.core.spec import SPECS
from tests.kore.conftest import token_of

EXAMPLES = 20
# Spec, where it is served, and how many operations it has.
SPECS_SERVED = [
    ("kore-supersim-v1.json", "/kore/supersim", 31),
    ("kore-programmable-wireless-v1.json", "/kore/programmable-wireless", 16),
    ("kore_client_v1.json", "/kore/client", 4),
    ("kore_token_api_v1.json", "/kore/api-services", 2),
]
# Failed logins of the token endpoint's examples count against this address, not the suite's.
ADDRESS = {"X-Forwarded-For": "192.0.2.200"}


@pytest.mark.parametrize(("name", "prefix", "count"), SPECS_SERVED,
                         ids=[s[0].split(".")[0] for s in SPECS_SERVED])
def test_no_server_errors_and_kores_shapes(server, account, kore, name, prefix, count):
    account.client.wireless.v1.rate_plans.create(unique_name="plan")
    server.provision(account.sid, 3, status="active", rate_plan="plan")
    document = copy.deepcopy(json.loads((SPECS / "kore" / name).read_text()))
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=f"{server.base_url}{prefix}")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == count
    headers = {"Authorization": f"Bearer {token_of(server, kore)}", **ADDRESS}

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):  # type: ignore[no-untyped-def]
            response = case.call(headers=headers)
            assert response.status_code < 500, (case.method, case.formatted_path, response.text)
            case.validate_response(response, checks=[response_schema_conformance])

        check()
