"""What the KORE webhook tests share: the Webhook API as a KORE client calls it, and kore-signature
computed here, independently of the server, from KORE's documented formula."""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit, urlunsplit

import httpx

from tests.kore.conftest import new_client, token_of
from tests.support import Received, Server, TestAccount


def webhook_api(server: Server, account: TestAccount) -> httpx.Client:
    """The Webhook API under /kore/webhook, as a KORE API client of the account calls it: with
    a bearer token from the token endpoint."""
    token = token_of(server, new_client(server, account.sid))
    return httpx.Client(base_url=f"{server.base_url}/kore/webhook/v1",
                        headers={"Authorization": f"Bearer {token}"})


def create_secret(server: Server, account: TestAccount, name: str = "hooks") -> dict:
    with webhook_api(server, account) as api:
        response = api.post("/secrets", json={"Name": name})
    assert response.status_code == 201, response.text
    return response.json()


def expected_signature(secret: str, method: str, url: str, body: bytes) -> str:
    """hex SHA-256 of secret + method + URL (no query, no fragment) + raw body."""
    parts = urlsplit(url)
    bare = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return hashlib.sha256(secret.encode() + method.encode() + bare.encode() + body).hexdigest()


def header(received: Received, name: str) -> str | None:
    """A header of a received request, whatever the case of its name."""
    return next((v for k, v in received.headers.items() if k.lower() == name.lower()), None)


def signed_by(received: Received, secret: str) -> bool:
    return header(received, "kore-signature") == expected_signature(
        secret, received.method, received.url, received.body)
