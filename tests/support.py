"""Test helpers: a real simplane server on a loopback port, and a receiver for its callbacks."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn
from sqlalchemy import event
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

import simplane
from simplane.core.accounts import create_account, create_api_key
from simplane.core.clock import Clock
from simplane.core.runtime import Runtime
from simplane.testing.server import (
    free_port,  # noqa: F401 (the tests import it from here)
    serve,
)


@dataclass
class TestAccount:
    sid: str
    token: str
    client: Client
    server: Server

    def api_key(self) -> tuple[str, str]:
        with self.server.runtime.db.write() as db:
            creds = create_api_key(db, self.server.runtime.box, self.server.clock, self.sid,
                                   "test key")
        return creds.sid, creds.secret


@dataclass
class Server:
    base_url: str
    runtime: Runtime
    clock: Clock  # the runtime's: the database's virtual clock
    _uvicorn: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    _admin: TestAccount | None = None

    def new_account(self, parent: str | None = None, admin: bool = False) -> TestAccount:
        """A new account (a subaccount of `parent`); `admin` may call operator endpoints."""
        with self.runtime.db.write() as db:
            creds = create_account(db, self.runtime.box, self.clock, owner_account_sid=parent,
                                   admin=admin)
        return TestAccount(creds.sid, creds.secret, self.client(creds.sid, creds.secret), self)

    def metrics(self) -> str:
        """/metrics, read with an admin account's credentials."""
        if self._admin is None:
            self._admin = self.new_account(admin=True)
        response = httpx.get(f"{self.base_url}/metrics", auth=(self._admin.sid, self._admin.token))
        response.raise_for_status()
        return response.text

    def client(self, username: str, password: str, account_sid: str | None = None) -> Client:
        return simplane.client(self.base_url, username, password, account_sid)

    def provision(self, account_sid: str, count: int, status: str = "new",
                  rate_plan: str | None = None) -> list[str]:
        """SIMs put into an account the way the operator's CLI does; returns their SIDs."""
        from simplane.wireless import inventory

        with self.runtime.db.write() as db:
            plan_pk = inventory.resolve_rate_plan(db, account_sid, rate_plan)
            return inventory.add_sims(db, account_sid, inventory.generated_rows(count, status),
                                      self.clock.now(), plan_pk)

    def network(self, sim_sid: str, kind: str = "attachment.accepted", **facts: Any) -> None:
        """Tell ingest, as a packet gateway would, what the SIM did on the network just now."""
        from sqlalchemy import select

        from simplane.network.events import NetworkEvent
        from simplane.network.ingest import ingest
        from simplane.wireless.models import Sim

        with self.runtime.db.read() as db:
            imsi = db.scalar(select(Sim.imsi).where(Sim.sid == sim_sid))
        ingest(self.runtime, [NetworkEvent(kind=kind, imsi=imsi, time=self.clock.now(), **facts)])

    def drain(self) -> None:
        """Run the background jobs until none has work left."""
        self.runtime.worker.drain()

    def stop(self) -> None:
        if self._uvicorn:
            self._uvicorn.should_exit = True
        if self._thread:
            self._thread.join(timeout=10)
        self.runtime.close()


def start_server(runtime: Runtime) -> Server:
    """The runtime served on a free loopback port, as the pytest plugin serves its own."""
    serving = serve(runtime)
    return Server(serving.url, runtime, runtime.clock, serving.server, serving.thread)


@dataclass
class Received:
    method: str
    url: str  # as the sender addressed it, with the query
    path: str
    headers: dict[str, str]
    body: bytes
    form: dict[str, list[str]] = field(default_factory=dict)

    def value(self, name: str) -> str:
        return self.form[name][0]


class _HTTPServer(ThreadingHTTPServer):
    request_queue_size = 128  # many senders at once connect without being turned away


class Receiver:
    """An HTTP endpoint on loopback that records every request it gets, then answers with the
    status codes it is told to (200 once those run out), or the (status, content type, body)
    answers it is told to, and the headers it is told to. Requests are recorded before the
    answer, so a sender that has had its answers finds them all here, in order. Given the port
    of a closed one, it comes back on that port."""

    def __init__(self, port: int = 0) -> None:
        self.requests: queue.Queue[Received] = queue.Queue()
        self.statuses: list[int] = []
        self.answers: list[tuple[int, str, str]] = []  # used before `statuses`
        self.headers: dict[str, str] = {}  # sent with every answer
        self.delay = 0.0
        self.gate: threading.Event | None = None  # when given, requests are held until it is set
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if len(body) < length:  # the sender died mid-request: nothing was received
                    self.close_connection = True
                    return
                parts = urlsplit(self.path)
                form = parse_qs(parts.query, keep_blank_values=True)
                if self.headers.get("Content-Type", "").startswith(
                        "application/x-www-form-urlencoded"):
                    form = parse_qs(body.decode(), keep_blank_values=True)
                host = self.headers.get("Host")
                received = Received(self.command, f"http://{host}{self.path}", parts.path,
                                    dict(self.headers.items()), body, form)
                gate = outer.gate
                if gate is not None:  # recorded first: the test knows it is being held
                    outer.requests.put(received)
                    gate.wait()
                if outer.delay:
                    time.sleep(outer.delay)
                if gate is None:
                    outer.requests.put(received)
                if outer.answers:
                    status, kind, text = outer.answers.pop(0)
                else:
                    status, kind, text = outer.statuses.pop(0) if outer.statuses else 200, "", ""
                payload = text.encode()
                self.send_response(status)
                if kind:
                    self.send_header("Content-Type", kind)
                for name, value in outer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = _HTTPServer(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def get(self, timeout: float = 10.0) -> Received:
        """The next request received; fails the test if none comes within `timeout`."""
        try:
            return self.requests.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no request reached {self.url} within {timeout}s") from None

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def raises(code: int, status: int | None = None):  # type: ignore[no-untyped-def]
    """Context manager: the call fails with this Twilio error code (and HTTP status); the
    error is kept as `.error`."""

    class _Check:
        def __enter__(self):  # type: ignore[no-untyped-def]
            return self

        def __exit__(self, kind, exc, tb):  # type: ignore[no-untyped-def]
            assert kind is not None, f"expected error {code}, but the call succeeded"
            assert issubclass(kind, TwilioRestException), exc
            assert exc.code == code, (exc.code, exc.status, exc.msg)
            if status is not None:
                assert exc.status == status, (exc.code, exc.status, exc.msg)
            self.error = exc
            return True

    return _Check()


@contextmanager
def statements_sent(engine) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """The SQL statements sent to the driver through `engine` while the block runs."""
    sent: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)
