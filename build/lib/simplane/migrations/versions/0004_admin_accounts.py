"""admin accounts: who may call operator endpoints

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.add_column(sa.Column("admin", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    # The bootstrap account (the first one) has always been the operator's.
    op.execute("UPDATE accounts SET admin = true WHERE pk = (SELECT min(pk) FROM accounts)")


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_column("admin")
