"""A local webhook receiver: an HTTP endpoint on loopback that records every request, in order,
and checks each one's X-Twilio-Signature with the account's auth token as Twilio's
`RequestValidator` does.

    simplane.webhooks.url                  # http://127.0.0.1:PORT (any path under it works)
    simplane.webhooks.wait_for(2)          # the first two requests, once they have come
    request.form["SimStatus"], request.json, request.valid_signature
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from twilio.request_validator import RequestValidator

from simplane.core.signature import kore_signature


@dataclass(frozen=True)
class Request:
    """One request the receiver got."""

    method: str
    url: str  # as the sender addressed it, with the query
    path: str
    headers: httpx.Headers  # names in any case
    body: bytes
    form: dict[str, str] = field(default_factory=dict)  # form body, or the query of a GET
    valid_signature: bool = False

    @property
    def json(self) -> Any:
        """The body as JSON (Event Streams webhook sinks send a JSON array of CloudEvents)."""
        return json.loads(self.body)

    def kore_signature_holds(self, secret: str | None) -> bool:
        """Whether kore-signature (on callbacks configured through KORE's flavour) is the one
        KORE's formula gives with `secret`, the account's active webhook secret (None: the
        account has none, and the signature is empty)."""
        return self.headers.get("kore-signature") == kore_signature(
            secret, self.method, self.url, self.body)


def signature_holds(token: str, method: str, url: str, headers: httpx.Headers, body: bytes,
                    form: dict[str, str]) -> bool:
    """Whether X-Twilio-Signature is the one `token` makes for this request, as
    `twilio.request_validator.RequestValidator` checks it: a form POST over its URL and
    parameters, a JSON body over the URL with its bodySHA256, a GET over its URL."""
    signature = headers.get("X-Twilio-Signature")
    if not signature:
        return False
    validator = RequestValidator(token)
    if method == "POST" and "bodySHA256" in parse_qs(urlsplit(url).query):
        return bool(validator.validate(url, body.decode("utf-8", "replace"), signature))
    return bool(validator.validate(url, form if method == "POST" else {}, signature))


class Receiver:
    """Records every request it gets, then answers with the status codes it is told to (200
    once those run out), or the (status, content type, body) answers it is told to, and the
    headers it is told to. Requests are recorded before the answer, so a sender that has had
    its answers finds them all here. Given the port of a closed one, it comes back on it."""

    def __init__(self, token: Callable[[], str | None] = lambda: None, port: int = 0) -> None:
        self._token = token
        self._requests: list[Request] = []
        self._arrived = threading.Condition()
        self.statuses: list[int] = []
        self.answers: list[tuple[int, str, str]] = []  # used before `statuses`
        self.headers: dict[str, str] = {}  # sent with every answer
        self.delay = 0.0  # seconds before each answer (a slow endpoint)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer._record(self.command, self.path, httpx.Headers(list(self.headers.items())),
                              body)
                if outer.delay:
                    time.sleep(outer.delay)
                status, kind, text = outer._answer()
                payload = text.encode()
                self.send_response(status)
                if kind:
                    self.send_header("Content-Type", kind)
                for name, value in outer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="simplane-webhooks",
                                        daemon=True)
        self._thread.start()

    def _record(self, method: str, target: str, headers: httpx.Headers, body: bytes) -> None:
        url = f"http://{headers.get('Host', f'127.0.0.1:{self.port}')}{target}"
        parts = urlsplit(target)
        values = parse_qs(parts.query, keep_blank_values=True)
        if headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            values = parse_qs(body.decode(), keep_blank_values=True)
        form = {name: found[0] for name, found in values.items()}
        token = self._token()
        valid = token is not None and signature_holds(token, method, url, headers, body, form)
        with self._arrived:
            self._requests.append(Request(method, url, parts.path, headers, body, form, valid))
            self._arrived.notify_all()

    def _answer(self) -> tuple[int, str, str]:
        with self._arrived:
            if self.answers:
                return self.answers.pop(0)
            return (self.statuses.pop(0) if self.statuses else 200), "", ""

    @property
    def requests(self) -> list[Request]:
        """Every request received so far, in the order they came."""
        with self._arrived:
            return list(self._requests)

    def wait(self, n: int, timeout: float) -> list[Request]:
        """The first `n` requests, once that many have come; AssertionError if they do not
        within `timeout` seconds."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._requests) >= n, timeout):
                raise AssertionError(f"{len(self._requests)} of {n} requests reached "
                                     f"{self.url} within {timeout}s")
            return self._requests[:n]

    def clear(self) -> None:
        with self._arrived:
            self._requests.clear()
            self.statuses.clear()
            self.answers.clear()
            self.headers.clear()
            self.delay = 0.0

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
