"""wireless: indexes for the worker's timers and resets, so that an idle worker's polls do not
scan every SIM

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_wireless_sims_status", "wireless_sims", ["status", "date_status_changed"])
    op.create_index("ix_wireless_sims_reset_status", "wireless_sims", ["reset_status"])


def downgrade() -> None:
    op.drop_index("ix_wireless_sims_reset_status", table_name="wireless_sims")
    op.drop_index("ix_wireless_sims_status", table_name="wireless_sims")
