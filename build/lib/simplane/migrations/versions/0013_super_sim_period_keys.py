"""network: a Super SIM's state names its billing period by the period's first second
(YYYY-MM-DDTHH:MM:SS) rather than its month, so that a ready period and the first active period
starting in the same month are two periods

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from simplane.core.clock import from_driver
from simplane.supersim import billing

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("network_sim_states") as batch:
        batch.alter_column("period", existing_type=sa.String(7), type_=sa.String(19),
                           existing_nullable=False)
    connection = op.get_bind()
    rows = connection.execute(sa.text(
        "SELECT s.sim_sid, s.period, m.date_ready, m.date_activated "
        "FROM network_sim_states s JOIN supersim_sims m ON m.sid = s.sim_sid")).all()
    now = datetime.now(UTC)
    for sim_sid, month, date_ready, date_activated in rows:
        # The period under way at the stored month's last moment, or now if that is earlier
        # (where a ready and an active period shared the month, the usage counted toward the
        # active one); the month's first second before any period.
        first = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
        when = max(first, min(billing.add_months(first, 1) - timedelta(seconds=1), now))
        period = billing.current_period(from_driver(date_ready), from_driver(date_activated),
                                        when)
        key = (period[1] if period else first).strftime("%Y-%m-%dT%H:%M:%S")
        connection.execute(sa.text("UPDATE network_sim_states SET period = :key "
                                   "WHERE sim_sid = :sid"), {"key": key, "sid": sim_sid})


def downgrade() -> None:
    op.execute("UPDATE network_sim_states SET period = substr(period, 1, 7)")
    with op.batch_alter_table("network_sim_states") as batch:
        batch.alter_column("period", existing_type=sa.String(19), type_=sa.String(7),
                           existing_nullable=False)
