"""Every test runs against a real simplane on a loopback port, once on SQLite and once on
PostgreSQL, driven by the official twilio client."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from simplane.config import Settings
from simplane.core.runtime import Runtime
from tests.support import Receiver, Server, TestAccount, start_server

POSTGRES_URL = os.environ.get("SIMPLANE_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"


def _postgres_database() -> Iterator[str]:
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required (REQUIRE_POSTGRES=1) but {POSTGRES_URL} "
                        f"does not answer: {exc}")
        pytest.skip(f"no PostgreSQL server answers at {POSTGRES_URL} "
                    "(set SIMPLANE_TEST_POSTGRES_URL, or REQUIRE_POSTGRES=1 to fail instead)")
    name = f"simplane_test_{secrets.token_hex(4)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[str]:
    """A fresh, empty database for the session, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'simplane.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture(scope="session")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Background jobs run when a test calls server.drain(), not on their own; the database's
    # clock is virtual and stands still until a test moves it: deterministic.
    settings = Settings(database_url=database_url, secret_key=_fernet_key(), run_workers=False)
    runtime = Runtime(settings)
    runtime.clock.start_virtual(datetime(2026, 1, 1, tzinfo=UTC), speed=0)
    srv = start_server(runtime)
    yield srv
    srv.stop()


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@pytest.fixture
def account(server: Server) -> TestAccount:
    """A new account of its own for each test, so that tests never see each other's data."""
    return server.new_account()


@pytest.fixture
def twilio(account: TestAccount):  # type: ignore[no-untyped-def]
    return account.client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()
