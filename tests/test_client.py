"""`simplane.client()` and `async_client()`: the official client, whatever region and edge it is
set to, reaches simplane and never Twilio."""

from __future__ import annotations

import asyncio

import httpx
import pytest

import simplane

# (region, edge, product): Twilio's hosts become {product}.{edge}.{region}.twilio.com
PLACES = [("ie1", "dublin", "wireless"), ("ie1", None, "wireless"), ("au1", "sydney", "supersim")]


def names(client, product: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Created here, then listed a page of one at a time (paging links included)."""
    if product == "wireless":
        for name in ("a", "b", "c"):
            client.wireless.v1.rate_plans.create(unique_name=name)
        return [p.unique_name for p in client.wireless.v1.rate_plans.list(page_size=1)]
    for name in ("a", "b", "c"):
        client.supersim.v1.fleets.create(network_access_profile=_nap(client), unique_name=name)
    return [f.unique_name for f in client.supersim.v1.fleets.list(page_size=1)]


def _nap(client) -> str:  # type: ignore[no-untyped-def]
    return client.supersim.v1.network_access_profiles.create().sid


@pytest.mark.parametrize(("region", "edge", "product"), PLACES)
def test_region_and_edge_hosts_reach_simplane(server, account, region, edge, product):
    client = simplane.client(server.base_url, account.sid, account.token)
    client.region, client.edge = region, edge
    assert names(client, product) == ["a", "b", "c"]


@pytest.mark.parametrize(("region", "edge", "product"), PLACES)
def test_region_and_edge_from_the_environment(server, account, monkeypatch, region, edge,
                                              product):
    monkeypatch.setenv("TWILIO_REGION", region)
    if edge:
        monkeypatch.setenv("TWILIO_EDGE", edge)
    client = simplane.client(server.base_url, account.sid, account.token)
    assert names(client, product) == ["a", "b", "c"]


def test_async_client_with_region_and_edge(server, account):
    client = simplane.async_client(server.base_url, account.sid, account.token)
    client.region, client.edge = "ie1", "dublin"

    async def run() -> list[str]:
        for name in ("a", "b", "c"):
            await client.wireless.v1.rate_plans.create_async(unique_name=name)
        plans = await client.wireless.v1.rate_plans.list_async(page_size=1)
        await client.http_client.close()
        return [p.unique_name for p in plans]

    assert asyncio.run(run()) == ["a", "b", "c"]


@pytest.mark.parametrize("host", ["wireless.dublin.ie1.twilio.com", "wireless.ie1.twilio.com",
                                  "supersim.sydney.au1.twilio.com:443"])
def test_host_routing_takes_region_and_edge_hosts(server, account, host):
    """A client that keeps Twilio's Host header (its connections sent to simplane) may use the
    bare /v1 paths of any region and edge."""
    path = "/v1/RatePlans" if host.startswith("wireless") else "/v1/Fleets"
    r = httpx.get(server.base_url + path, auth=(account.sid, account.token),
                  headers={"Host": host})
    assert r.status_code == 200, r.text
    assert r.json()["meta"]["url"].startswith(f"http://{host}{path}")
