"""kernel: the clock every process on the database reads (real, or virtual and movable)

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    clock = op.create_table(
        "clock",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("virtual_base", sa.DateTime(timezone=True), nullable=True),
        sa.Column("real_base", sa.Float(), nullable=True),
        sa.Column("speed", sa.Float(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_clock"),
    )
    op.bulk_insert(clock, [{"id": 1, "mode": "real", "speed": 1.0, "version": 0}])


def downgrade() -> None:
    op.drop_table("clock")
