"""Webhook signatures: X-Twilio-Signature, computed the way Twilio computes it (and
RequestValidator checks it), and KORE's kore-signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit, urlunsplit


def sign_form(auth_token: str, url: str, params: Mapping[str, str | list[str]]) -> str:
    """HMAC-SHA1 over the URL followed by each parameter name and value, names sorted."""
    payload = url
    for name in sorted(params):
        values = params[name]
        for value in sorted(set(values)) if isinstance(values, list) else [values]:
            payload += f"{name}{value}"
    return _hmac(auth_token, payload)


def with_body_hash(url: str, body: bytes) -> str:
    """JSON deliveries sign the URL with bodySHA256=<hex sha256 of the body> in its query."""
    parts = urlsplit(url)
    digest = hashlib.sha256(body).hexdigest()
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=query + urlencode({"bodySHA256": digest})))


def sign_url(auth_token: str, url: str) -> str:
    return _hmac(auth_token, url)


def _hmac(key: str, payload: str) -> str:
    mac = hmac.new(key.encode(), payload.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def kore_signature(secret: str | None, method: str, url: str, body: bytes) -> str:
    """KORE's kore-signature: the hex SHA-256 (a plain hash, no HMAC) of the account's active
    webhook secret, the HTTP method, the callback URL without its query and fragment, and the raw
    body, concatenated in that order; empty when the account has no secret."""
    if not secret:
        return ""
    parts = urlsplit(url)
    bare = urlunsplit(parts._replace(query="", fragment=""))
    return hashlib.sha256(secret.encode() + method.upper().encode() + bare.encode()
                          + body).hexdigest()
