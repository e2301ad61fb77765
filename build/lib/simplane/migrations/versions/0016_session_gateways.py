"""network: the packet gateway of each data session, so that a gateway's open sessions end when
it restarts (RADIUS Accounting-On/Off); sessions stored before have none

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("network_data_sessions", sa.Column("gateway", sa.String(64), nullable=True))
    op.create_index("ix_network_data_sessions_gateway", "network_data_sessions",
                    ["gateway", "status"])


def downgrade() -> None:
    op.drop_index("ix_network_data_sessions_gateway", table_name="network_data_sessions")
    with op.batch_alter_table("network_data_sessions") as batch:
        batch.drop_column("gateway")
