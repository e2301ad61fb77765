"""network: a Super SIM's state names its billing period by the period's first second
(YYYY-MM-DDTHH:MM:SS) rather than its month, so that a ready period and the first active period
starting in the same month are two periods (Wireless periods stay calendar months, YYYY-MM)

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from simplane.core.clock import utc
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
    for sim_sid, month, date_ready, date_activated in rows:
        # The latest period starting in the month stored (where a ready and an active period
        # shared it, the usage counted toward the active one); the month's first second if
        # none did, which any later event's period follows.
        first = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
        starts = [start for _type, start, _end in billing.periods(
            _when(date_ready), _when(date_activated), billing.add_months(first, 1))
            if start.strftime("%Y-%m") == month]
        key = max(starts).strftime("%Y-%m-%dT%H:%M:%S") if starts else f"{month}-01T00:00:00"
        connection.execute(sa.text("UPDATE network_sim_states SET period = :key "
                                   "WHERE sim_sid = :sid"), {"key": key, "sid": sim_sid})


def _when(value: datetime | str | None) -> datetime | None:
    """A timestamp as the driver returns it (text on SQLite), aware and in UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return None if value is None else utc(value)


def downgrade() -> None:
    op.execute("UPDATE network_sim_states SET period = substr(period, 1, 7)")
    with op.batch_alter_table("network_sim_states") as batch:
        batch.alter_column("period", existing_type=sa.String(19), type_=sa.String(7),
                           existing_nullable=False)
