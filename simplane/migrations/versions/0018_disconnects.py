"""network: Disconnect-Requests (RFC 5176) owed to packet gateways, and what a session needs to
be cut off: the User-Name its gateway gave it and the address its Disconnect-Requests go to

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from simplane.core.db import UTCDateTime
from simplane.core.models import PK

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("network_data_sessions", sa.Column("user_name", sa.String(64), nullable=True))
    op.add_column("network_data_sessions",
                  sa.Column("disconnect_to", sa.String(45), nullable=True))
    op.create_table(
        "network_disconnects",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("account_sid", sa.String(34), nullable=False),
        sa.Column("sim_sid", sa.String(34), nullable=False),
        sa.Column("imsi", sa.String(16), nullable=False),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("address", sa.String(45), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=True),
        sa.Column("framed_ip", sa.String(45), nullable=True),
        sa.Column("nas_identifier", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.String(64), nullable=True),
        sa.Column("next_attempt_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("date_created", UTCDateTime(timezone=True), nullable=False),
        sa.Column("date_updated", UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("sim_sid", "session_id"),
    )
    op.create_index("ix_network_disconnects_due", "network_disconnects",
                    ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_network_disconnects_due", table_name="network_disconnects")
    op.drop_table("network_disconnects")
    with op.batch_alter_table("network_data_sessions") as batch:
        batch.drop_column("disconnect_to")
        batch.drop_column("user_name")
