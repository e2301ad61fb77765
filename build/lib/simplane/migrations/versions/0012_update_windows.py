"""network: a data session's current update window (its start, and the bytes counted in it), so
that Super SIM data-session.updated events come about every 6 minutes however often the gateway
sends interim updates

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from simplane.core.db import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("network_data_sessions") as batch:
        batch.add_column(sa.Column("window_start", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("window_up", sa.BigInteger(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("window_down", sa.BigInteger(), nullable=False,
                                   server_default="0"))
    # Until now every interim update closed a window: the one under way began at the last.
    op.execute("UPDATE network_data_sessions SET window_start = last_updated")
    with op.batch_alter_table("network_data_sessions") as batch:
        batch.alter_column("window_start", existing_type=UTCDateTime(timezone=True),
                           nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("network_data_sessions") as batch:
        batch.drop_column("window_down")
        batch.drop_column("window_up")
        batch.drop_column("window_start")
