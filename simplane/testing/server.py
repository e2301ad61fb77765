"""A simplane server in this process, on a free loopback port, on a clock that moves only when
told to; and the two accounts a test needs (the user's, and an admin one that speaks for the
network)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import httpx
import uvicorn

from simplane.config import Settings
from simplane.core.accounts import Credentials, create_account
from simplane.core.runtime import Runtime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Serving:
    """A uvicorn server running an app in a thread of this process."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(runtime: Runtime, host: str = "127.0.0.1", port: int | None = None) -> Serving:
    """Serve every product of `runtime` on a loopback port; returns once it answers."""
    from simplane.app import create_app
    from simplane.core.outbound import Policy, default_allow

    if runtime.settings.outbound_allow is None:  # as `simplane serve` on loopback: receivers
        runtime.outbound = Policy.parse(default_allow(host))  # on loopback can be reached
    port = port or free_port()
    config = uvicorn.Config(create_app(runtime), host=host, port=port, log_level="warning",
                            access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="simplane-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:  # uvicorn says when it listens; nothing else to wait on
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"simplane did not start on {host}:{port}")
        time.sleep(0.01)
    return Serving(f"http://{host}:{port}", server, thread)


def settings(database_url: str, run_workers: bool) -> Settings:
    """A server of its own: a fresh key for the auth tokens it keeps, nothing from the
    environment's account variables."""
    from cryptography.fernet import Fernet

    return Settings(database_url=database_url, secret_key=Fernet.generate_key().decode(),
                    account_sid=None, auth_token=None, run_workers=run_workers)


def runtime(database_url: str, start: datetime, run_workers: bool = True,
            transport: httpx.BaseTransport | None = None, migrate: bool = True) -> Runtime:
    """A Runtime on its database's clock, made virtual and standing still at `start` (the
    schema migrated); `transport` carries its outbound HTTP (callbacks, webhook and Segment
    sinks). `migrate=False` for a database known to be migrated."""
    rt = Runtime(settings(database_url, run_workers), migrate=migrate)
    rt.clock.start_virtual(start, speed=0)  # type: ignore[attr-defined]
    if transport is not None:
        rt.http.close()
        rt.http = httpx.Client(timeout=rt.settings.callback_timeout, follow_redirects=False,
                               transport=transport)
    return rt


def new_account(rt: Runtime, admin: bool = False, parent: str | None = None) -> Credentials:
    with rt.db.write() as db:
        return create_account(db, rt.box, rt.clock, owner_account_sid=parent, admin=admin)
