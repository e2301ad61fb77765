"""The plugin itself: registered through the pytest11 entry point, one server per session only
for sessions that ask for it, on the database the option names, reset on demand as well as
before each test."""

from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path

import pytest

from tests.testing.conftest import PLUGIN_ARGS

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]


def test_registered_as_a_pytest11_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"simplane": "simplane.testing"}


def test_the_option_is_in_pytests_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*PLUGIN_ARGS, "--help")
    result.stdout.fnmatch_lines(["*--simplane-database-url=URL*"])


def test_on_the_database_asked_for_and_reset_on_demand(run, plugin_database) -> None:  # type: ignore[no-untyped-def]
    result = run(f'''
        import threading

        def servers():
            return [t for t in threading.enumerate() if t.name == "simplane-server"]

        BEFORE = servers()  # (the suite running this test may serve its own)

        def test_no_server_unless_asked_for():
            assert servers() == BEFORE

        def test_the_database(simplane, tmp_path_factory):
            url = simplane.runtime.settings.database_url
            if {plugin_database!r} is None:
                assert url.startswith("sqlite:///" + str(tmp_path_factory.getbasetemp()))
            else:
                assert url.startswith("postgresql") and url.endswith(
                    {(plugin_database or "").rsplit("/", 1)[-1]!r})

        def test_reset_in_the_middle_of_a_test(simplane):
            start = simplane.clock.now()
            sim = simplane.sims.provision()[0]
            simplane.device(sim).attach()
            simplane.faults.refuse_attachment(sim)
            simplane.clock.advance("1d")
            simplane.reset()
            assert simplane.client.wireless.v1.sims.list() == []
            assert simplane.clock.now() == start
            sim = simplane.sims.provision()[0]
            assert simplane.device(sim).attach()  # no fault left
    ''')
    result.assert_outcomes(passed=3)


def test_a_migrated_sqlite_file_is_kept_in_pytests_cache(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
        from sqlalchemy import inspect

        def test_served(simplane):
            assert simplane.sims.provision(count=2)
            print("tables:", sorted(inspect(simplane.runtime.db.engine).get_table_names()))
    ''')
    pytester.runpytest(*PLUGIN_ARGS, "-s").assert_outcomes(passed=1)
    (kept,) = (pytester.path / ".pytest_cache").rglob("schema-*.db")
    marked = sqlite3.connect(kept)  # the next session's database is a copy of it
    marked.execute("CREATE TABLE copied_from_the_cache (id INTEGER)")
    marked.commit()
    marked.close()
    result = pytester.runpytest(*PLUGIN_ARGS, "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*tables:*copied_from_the_cache*"])


def test_reset_keeps_every_row_the_migrations_make(tmp_path: Path) -> None:
    """A table a migration fills (a counter, the clock) must not be emptied between tests."""
    from sqlalchemy import create_engine, func, inspect, select, table

    from simplane.core.db import upgrade
    from simplane.testing.reset import KEPT_TABLES

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        filled = {name for name in inspect(engine).get_table_names()
                  if conn.scalar(select(func.count()).select_from(table(name)))}
    engine.dispose()
    assert filled and filled <= KEPT_TABLES
