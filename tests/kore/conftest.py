"""KORE fixtures: API clients of the test's account, and bearer tokens from the token endpoint."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from simplane.kore import service
from tests.support import Server, TestAccount

BOTH = ["SuperSIM", "ProgrammableWireless"]


@dataclass
class KoreClient:
    client_id: str
    client_secret: str
    account_sid: str


def new_client(server: Server, account_sid: str, products: list[str] | None = None,
               lifetime: str = "1h", client_type: str = "admin") -> KoreClient:
    """A client made the way `simplane kore clients create` makes one."""
    with server.runtime.db.write() as db:
        made, secret = service.create_client(
            db, server.runtime.box, server.clock, account_sid, name="test client",
            products=products or BOTH, lifetime=service.LIFETIMES[lifetime],
            client_type=client_type)
        return KoreClient(made.client_id, secret, account_sid)


def token_of(server: Server, client: KoreClient, address: str | None = None) -> str:
    """A token of `client`, asked for from `address` (X-Forwarded-For) when one is given."""
    response = httpx.post(f"{server.base_url}/kore/api-services/v1/auth/token",
                          data={"grant_type": "client_credentials", "client_id": client.client_id,
                                "client_secret": client.client_secret},
                          headers={"X-Forwarded-For": address} if address else {})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
def kore(server: Server, account: TestAccount) -> KoreClient:
    """An admin client of the test's account for both products."""
    return new_client(server, account.sid)


@pytest.fixture
def bearer(server: Server, kore: KoreClient) -> dict[str, str]:
    """Headers with a bearer token of `kore`."""
    return {"Authorization": f"Bearer {token_of(server, kore)}"}
