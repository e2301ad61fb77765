"""Migrations that convert stored data: upgraded from the revision before, with rows in it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command

from simplane.config import normalise_database_url
from simplane.core.db import alembic_config
from tests.conftest import _postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
    else:
        for url in _postgres_database():
            yield normalise_database_url(url)


def insert(connection: sa.Connection, table: str, **values: object) -> None:
    """A row with these values, and a value of its type in every other required column."""
    columns = sa.Table(table, sa.MetaData(), autoload_with=connection).columns
    for column in columns:
        if column.name in values or column.nullable or column.primary_key:
            continue
        python_type = column.type.python_type
        values[column.name] = {str: "x", bool: False, int: 0, datetime: datetime(
            2025, 1, 1, tzinfo=UTC)}[python_type]
    connection.execute(sa.text(f"INSERT INTO {table} ({', '.join(values)}) VALUES "
                               f"({', '.join(':' + name for name in values)})"), values)


def when(value: object) -> datetime | None:
    if isinstance(value, str):  # SQLite
        value = datetime.fromisoformat(value)
    return None if value is None else value.astimezone(UTC) if value.tzinfo else value.replace(
        tzinfo=UTC)


def test_wireless_sims_get_activation_dates_and_their_states_period_keys(empty_database):
    """0014: an active SIM counts as activated when its status last changed; a state's
    calendar month becomes the billing period under way at the month's end."""
    config = alembic_config(empty_database)
    command.upgrade(config, "0013")
    engine = sa.create_engine(empty_database)
    sims = {  # sid: status, status changed, stored month, expected period key
        "DE" + "a" * 32: ("active", datetime(2025, 3, 20, 8, tzinfo=UTC), "2025-05",
                          "2025-05-20T08:00:00"),
        "DE" + "b" * 32: ("suspended", datetime(2025, 3, 20, 8, tzinfo=UTC), "2025-05",
                          "2025-05-01T00:00:00"),
        "DE" + "c" * 32: ("active", datetime(2025, 5, 25, tzinfo=UTC), "2025-04",
                          "2025-04-01T00:00:00"),  # ready in April, activated later
        "DE" + "d" * 32: ("active", datetime(2025, 1, 31, 12, tzinfo=UTC), "2025-03",
                          "2025-03-31T12:00:00"),  # clamped to the 28th in February only
    }
    with engine.begin() as connection:
        for i, (sid, (status, changed, month, _key)) in enumerate(sims.items()):
            insert(connection, "wireless_sims", sid=sid, account_sid="AC" + "0" * 32,
                   iccid=f"8901{i}", imsi=f"90142{i}", status=status,
                   date_status_changed=changed)
            insert(connection, "network_sim_states", sim_sid=sid, account_sid="AC" + "0" * 32,
                   period=month, used_home=1000 + i)
    engine.dispose()

    command.upgrade(config, "0014")
    engine = sa.create_engine(empty_database)
    with engine.begin() as connection:
        activated = dict(connection.execute(sa.text(
            "SELECT sid, date_activated FROM wireless_sims")).all())
        periods = dict(connection.execute(sa.text(
            "SELECT sim_sid, period FROM network_sim_states")).all())
        used = dict(connection.execute(sa.text(
            "SELECT sim_sid, used_home FROM network_sim_states")).all())
    assert {sid: when(value) for sid, value in activated.items()} == {
        sid: changed if status == "active" else None
        for sid, (status, changed, _m, _k) in sims.items()}
    assert periods == {sid: key for sid, (_s, _c, _m, key) in sims.items()}
    assert sorted(used.values()) == [1000, 1001, 1002, 1003]  # the usage itself is kept

    def version() -> int:
        with engine.connect() as connection:
            return connection.execute(sa.text("SELECT version FROM network_facts")).scalar_one()

    before = version()
    with engine.begin() as connection:  # ingest must hear of a new activation date
        connection.execute(sa.text("UPDATE wireless_sims SET date_activated = NULL"))
    assert version() > before
    engine.dispose()

    command.downgrade(config, "0013")
    engine = sa.create_engine(empty_database)
    before = version()
    with engine.begin() as connection:
        assert "date_activated" not in {c["name"] for c in sa.inspect(connection).get_columns(
            "wireless_sims")}
        assert set(connection.execute(sa.text(
            "SELECT period FROM network_sim_states")).scalars()) == {"2025-05", "2025-04",
                                                                     "2025-03"}
        connection.execute(sa.text("UPDATE wireless_sims SET status = 'canceled'"))
    assert version() > before  # the facts trigger is still there
    engine.dispose()


def test_the_migrations_build_the_schema_the_models_describe(empty_database):
    """Every table, column, index and constraint of the models is made by a migration, and
    nothing else is."""
    from importlib import import_module

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from simplane import products
    from simplane.core.db import Base, upgrade

    for module in ("core", "network", *products.NAMES, *products.FLAVOURS):
        import_module(f"simplane.{module}.models")
    upgrade(empty_database)
    engine = sa.create_engine(empty_database)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []
