"""The official `twilio` client, pointed at a simplane server.

    import simplane
    client = simplane.client("http://127.0.0.1:8080", ACCOUNT_SID, AUTH_TOKEN)
    client.wireless.v1.sims.list()

Only the host is rewritten: `https://wireless.twilio.com/v1/Sims` becomes
`http://127.0.0.1:8080/wireless/v1/Sims`, as do the hosts of every region and edge
(`wireless.dublin.ie1.twilio.com`, set by `client.region`/`client.edge` or TWILIO_REGION/TWILIO_EDGE);
paths, parameters, headers and auth are the client's own. URLs that already point at simplane
(paging links) pass through untouched.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from twilio.http import HttpClient
from twilio.http.async_http_client import AsyncHttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

TWILIO_SUFFIX = ".twilio.com"


def rewrite(base_url: str, url: str) -> str:
    """https://{product}[.{edge}][.{region}].twilio.com/v1/... → {base_url}/{product}/v1/..."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host.endswith(TWILIO_SUFFIX):
        return url
    product = host.split(".", 1)[0]
    base = urlsplit(base_url)
    path = f"{base.path.rstrip('/')}/{product}{parts.path}"
    return urlunsplit((base.scheme, base.netloc, path, parts.query, ""))


class SimplaneHttpClient(TwilioHttpClient):
    """The client's own HTTP client (requests), with the host rewritten."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        return super().request(method, rewrite(self.base_url, url), *args, **kwargs)


class SimplaneAsyncHttpClient(AsyncHttpClient):
    """An asynchronous HTTP client on httpx, with the host rewritten."""

    def __init__(self, base_url: str, timeout: float | None = None) -> None:
        super().__init__(logger=logging.getLogger("simplane.client"), is_async=True, timeout=timeout)
        self.base_url = base_url
        self._client = httpx.AsyncClient(timeout=timeout)

    async def request(self, method: str, uri: str, params: dict | None = None,
                      data: dict | None = None, headers: dict | None = None,
                      auth: tuple[str, str] | None = None,
                      timeout: float | None = None,  # noqa: ASYNC109 - twilio passes it
                      allow_redirects: bool = False) -> Response:
        response = await self._client.request(
            method, rewrite(self.base_url, uri), params=params, data=data, headers=headers,
            auth=auth, timeout=timeout or self.timeout, follow_redirects=allow_redirects)
        self.last_response = Response(response.status_code, response.text, response.headers)
        return self.last_response

    async def close(self) -> None:
        await self._client.aclose()


def client(base_url: str, username: str, password: str, account_sid: str | None = None,
           **kwargs: Any) -> Client:
    """A synchronous `twilio.rest.Client` that talks to the simplane at `base_url`.
    `username`/`password` are an Account SID and Auth Token, or an API Key SID and secret (then
    give `account_sid` too)."""
    http: HttpClient = SimplaneHttpClient(base_url, **kwargs)
    return _client(username, password, account_sid, http)


def async_client(base_url: str, username: str, password: str, account_sid: str | None = None,
                 timeout: float | None = None) -> Client:
    """The same, for `await client.wireless.v1.sims.list_async()`."""
    return _client(username, password, account_sid, SimplaneAsyncHttpClient(base_url, timeout))


class SimplaneClient(Client):
    """`twilio.rest.Client` whose region and edge rename Twilio's hosts only (which the adapter
    sends to simplane whatever their region and edge): its own would make simplane's paging
    links `127.dublin.ie1.0.1:8080`, a name for the real DNS."""

    def get_hostname(self, uri: str) -> str:
        if (urlsplit(uri).hostname or "").endswith(TWILIO_SUFFIX):
            return str(super().get_hostname(uri))
        return uri


def _client(username: str, password: str, account_sid: str | None, http: HttpClient) -> Client:
    return SimplaneClient(username, password, account_sid, http_client=http)
