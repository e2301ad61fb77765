"""UsageRecords windows and paging, per SIM and per account."""

from __future__ import annotations

import httpx
import pytest


@pytest.fixture
def sim(server, account):
    account.client.wireless.v1.rate_plans.create(unique_name="p")
    [sid] = server.provision(account.sid, 1, status="active", rate_plan="p")
    return sid


def test_start_defaults_to_one_month_before_end(account, sim):
    wireless = account.client.wireless.v1
    for records in (wireless.sims(sim).usage_records, wireless.usage_records):
        [record] = records.list(end="2024-03-31T00:00:00Z")
        assert record.period == {"start": "2024-02-29T00:00:00Z", "end": "2024-03-31T00:00:00Z"}
        [record] = records.list(end="2023-07-15T12:00:00Z")
        assert record.period["start"] == "2023-06-15T12:00:00Z"


@pytest.mark.parametrize("path", ["/Sims/{sim}/UsageRecords", "/UsageRecords"])
def test_an_end_with_no_month_before_it_is_a_400_naming_end(server, account, sim, path):
    r = httpx.get(f"{server.base_url}/wireless/v1" + path.format(sim=sim),
                  params={"End": "0001-01-20T00:00:00Z"}, auth=(account.sid, account.token))
    assert r.status_code == 400 and "End" in r.json()["message"], r.text


def test_pages_of_periods_before_1970_follow_on(account, sim):
    wireless = account.client.wireless.v1
    window = {"start": "1969-12-31T22:00:00Z", "end": "1970-01-01T03:00:00Z",
              "granularity": "hourly", "page_size": 2}
    for records in (wireless.sims(sim).usage_records, wireless.usage_records):
        starts = [r.period["start"] for r in records.list(**window)]
        assert starts == ["1969-12-31T22:00:00Z", "1969-12-31T23:00:00Z", "1970-01-01T00:00:00Z",
                          "1970-01-01T01:00:00Z", "1970-01-01T02:00:00Z"]
