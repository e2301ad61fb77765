"""Alembic environment: every product's tables in one metadata."""

from __future__ import annotations

from importlib import import_module

from alembic import context
from sqlalchemy import create_engine, pool

from simplane import products
from simplane.core.db import Base

import_module("simplane.core.models")
import_module("simplane.network.models")
for name in products.NAMES + products.FLAVOURS:
    import_module(f"simplane.{name}.models")

config = context.config
url = config.get_main_option("sqlalchemy.url")


def run_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    assert url, "sqlalchemy.url is not set"
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
