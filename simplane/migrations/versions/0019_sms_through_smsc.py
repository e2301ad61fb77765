"""SMS through an SMSC: every SIM may carry an MSISDN (the number an SMSC reaches it on), and a
to-SIM SMS command the SMSC accepted keeps the message_id its delivery receipt names

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

SIMS = ("wireless_sims", "supersim_sims")
COMMANDS = ("wireless_commands", "supersim_sms_commands")


def upgrade() -> None:
    for table in SIMS:
        op.add_column(table, sa.Column("msisdn", sa.String(15), nullable=True))
        op.create_index(f"ix_{table}_msisdn", table, ["msisdn"], unique=True)
    for table in COMMANDS:
        op.add_column(table, sa.Column("smsc_message_id", sa.String(65), nullable=True))
        op.create_index(f"ix_{table}_smsc_message_id", table, ["smsc_message_id"])


def downgrade() -> None:
    for table in COMMANDS:
        op.drop_index(f"ix_{table}_smsc_message_id", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("smsc_message_id")
    for table in SIMS:
        op.drop_index(f"ix_{table}_msisdn", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("msisdn")
