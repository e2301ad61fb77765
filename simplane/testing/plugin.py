"""The pytest plugin: one simplane per test session, a clean one for each test.

    def test_wakes_the_fleet(simplane):
        sim = simplane.sims.provision()[0]
        simplane.device(sim).attach()
        my_app.wake_all(simplane.client)
        assert simplane.device(sim).received() == ["wake"]

The server starts on the first test that asks for `simplane`, on a free loopback port, on
SQLite in the session's temporary directory (`--simplane-database-url postgresql://…` runs it on
that PostgreSQL database instead: a database of its own, since the plugin deletes its rows).
A new SQLite file is a copy of one migrated by an earlier session, kept in pytest's cache.
Before each test everything the last one made is deleted (accounts, SIMs, plans, sessions,
events…), the clock goes back to where the session started it, and faults, webhooks and devices
start empty; the test's account and its credentials stay the same all session.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from simplane.testing.handle import Simplane



def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("simplane", "simplane server for tests")
    group.addoption("--simplane-database-url", default=None, metavar="URL",
                    help="run the `simplane` fixture's server on this database (e.g. "
                         "postgresql://127.0.0.1/simplane_test; its rows are deleted) instead "
                         "of SQLite in a temporary directory")


@pytest.fixture(scope="session")
def simplane_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[Simplane]:
    """The session's server (the `simplane` fixture resets it before each test)."""
    from simplane.testing.handle import Simplane

    url = request.config.getoption("simplane_database_url") or (
        f"sqlite:///{tmp_path_factory.mktemp('simplane') / 'simplane.db'}")
    cache = getattr(request.config, "cache", None)  # none with -p no:cacheprovider
    plane = Simplane(url, schema_cache=cache.mkdir("simplane") if cache is not None else None)
    yield plane
    plane.close()


@pytest.fixture
def simplane(simplane_server: Simplane) -> Simplane:
    """A clean simplane for this test (see `simplane.testing.Simplane`)."""
    simplane_server.reset()
    return simplane_server
