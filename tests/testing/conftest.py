"""The plugin is tested as users meet it: a test file of theirs, run by pytest (`pytester`)
with the plugin, on SQLite (no option: the default) and on a PostgreSQL database made for the
run (`--simplane-database-url`)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points

import pytest
import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401 (see below)

import simplane
from tests.conftest import _postgres_database

# pytester runs the user's pytest in this process and forgets the modules it imported: import
# every module of simplane (and the PostgreSQL dialect) here first, so that none (and no table)
# is defined twice.
for found in pkgutil.walk_packages(simplane.__path__, "simplane."):
    if not found.name.startswith("simplane.migrations"):
        importlib.import_module(found.name)

# Where simplane is installed with its entry point the plugin loads itself, as for users; a
# checkout installed before the entry point existed loads it by name.
LOADED_BY_ENTRY_POINT = any(e.value == "simplane.testing"
                            for e in entry_points(group="pytest11"))
PLUGIN_ARGS = [] if LOADED_BY_ENTRY_POINT else ["-p", "simplane.testing"]


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def plugin_database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The option a user would give: none (SQLite), or a PostgreSQL database of the run's."""
    if request.param == "sqlite":
        yield None
    else:
        yield from _postgres_database()


Run = Callable[..., pytest.RunResult]


@pytest.fixture
def run(pytester: pytest.Pytester, plugin_database: str | None) -> Run:
    """Write a user's test file and run pytest on it with the plugin."""

    def run(source: str, *args: str) -> pytest.RunResult:
        pytester.makepyfile(source)
        database = ["--simplane-database-url", plugin_database] if plugin_database else []
        return pytester.runpytest(*PLUGIN_ARGS, *database, "-p", "no:cacheprovider", *args)

    return run
