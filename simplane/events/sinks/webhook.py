"""Webhook sinks: a JSON array of CloudEvents per request, signed as Twilio signs JSON bodies
(X-Twilio-Signature over the URL with bodySHA256=<hex sha256 of the body> in its query)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

import orjson

from simplane.core.callbacks import USER_AGENT
from simplane.core.errors import TwilioError
from simplane.core.params import check_url
from simplane.core.signature import sign_url, with_body_hash
from simplane.events.sinks.base import Outgoing, Result, deliver, fields, invalid

if TYPE_CHECKING:
    from simplane.config import Settings
    from simplane.core.runtime import Runtime



def configure(config: dict[str, Any]) -> dict[str, Any]:
    fields(config, {"destination": str}, {"method": str, "batch_events": bool})
    try:
        check_url("destination", config["destination"])
    except TwilioError:
        raise invalid("destination", "must be an absolute http(s) URL") from None
    method = config.get("method", "POST").upper()
    if method not in ("POST", "GET"):
        raise invalid("method", "must be POST or GET")
    return {"destination": config["destination"], "method": method,
            "batch_events": config.get("batch_events", True)}


def batch_limit(config: dict[str, Any], settings: Settings) -> int:
    return settings.events_batch_size if config.get("batch_events", True) else 1


def request(config: dict[str, Any], events: list[Outgoing], token: str
            ) -> tuple[str, str, bytes, dict[str, str]]:
    """method, URL, body and headers of one delivery."""
    body = orjson.dumps([e.event for e in events])
    parts = urlsplit(config["destination"])._replace(fragment="")  # never requested, nor signed
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               "Accept": "*/*"}
    if parts.username is not None:  # credentials in the URL become Basic auth, as Twilio does
        userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(userinfo.encode()).decode()
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=host)
    url = with_body_hash(urlunsplit(parts), body)
    headers["X-Twilio-Signature"] = sign_url(token, url)
    headers["I-Twilio-Idempotency-Token"] = events[0].event["id"] + f"-{len(events)}"
    return config["method"], url, body, headers


def send(runtime: Runtime, config: dict[str, Any], events: list[Outgoing], token: str) -> Result:
    method, url, body, headers = request(config, events, token)
    return deliver(runtime, len(events), method, url, content=body, headers=headers)
