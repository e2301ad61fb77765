"""network: per-SIM network state (attachment, usage this period), session end reasons, command
counts in the hourly rollups

Revision ID: 0008
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from simplane.core.db import UTCDateTime

revision = "0008"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "network_sim_states",
        sa.Column("sim_sid", sa.String(34), primary_key=True),
        sa.Column("account_sid", sa.String(34), nullable=False),
        sa.Column("attached", sa.Boolean(), nullable=False),
        sa.Column("mcc", sa.String(3)),
        sa.Column("mnc", sa.String(3)),
        sa.Column("roaming", sa.String(16), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("changed_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("used_home", sa.BigInteger(), nullable=False),
        sa.Column("used_national", sa.BigInteger(), nullable=False),
        sa.Column("used_international", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_network_sim_states_attached", "network_sim_states",
                    ["attached", "sim_sid"])
    with op.batch_alter_table("network_data_sessions") as batch_op:
        batch_op.add_column(sa.Column("end_reason", sa.String(32)))
    for table in ("network_sim_usage_hours", "network_account_usage_hours"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("commands_from_sim", sa.BigInteger(), nullable=False,
                                          server_default="0"))
            batch_op.add_column(sa.Column("commands_to_sim", sa.BigInteger(), nullable=False,
                                          server_default="0"))


def downgrade() -> None:
    for table in ("network_sim_usage_hours", "network_account_usage_hours"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("commands_to_sim")
            batch_op.drop_column("commands_from_sim")
    with op.batch_alter_table("network_data_sessions") as batch_op:
        batch_op.drop_column("end_reason")
    op.drop_index("ix_network_sim_states_attached", "network_sim_states")
    op.drop_table("network_sim_states")
