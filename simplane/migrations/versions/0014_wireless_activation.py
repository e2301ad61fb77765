"""wireless: a SIM's activation date (`date_activated`), from which its rate plan's data limits
are metered month by month, as Twilio meters them; a Wireless SIM's state names its billing
period by the period's first second, as a Super SIM's does (calendar months before activation)

A SIM already active is taken as activated when its status last changed; a SIM suspended,
deactivated or canceled is taken as never activated (its activation date is not known; it
gets one if it is made active again).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from simplane.core.clock import add_months, from_driver, month_started
from simplane.core.db import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

SQLITE_TRIGGER = "network_facts_wireless_sims_0"  # 0011's trigger on UPDATE OF these columns
WATCHED = "account_sid, imsi, status, rate_plan_pk"
BUMP = "UPDATE network_facts SET version = version + 1"


def upgrade() -> None:
    op.add_column("wireless_sims", sa.Column("date_activated", UTCDateTime(timezone=True),
                                             nullable=True))
    op.execute("UPDATE wireless_sims SET date_activated = date_status_changed "
               "WHERE status = 'active'")
    _watch(f"{WATCHED}, date_activated")
    connection = op.get_bind()
    now = datetime.now(UTC)
    rows = connection.execute(sa.text(
        "SELECT s.sim_sid, s.period, w.date_activated FROM network_sim_states s "
        "JOIN wireless_sims w ON w.sid = s.sim_sid")).all()
    for sim_sid, month, activated in rows:
        anchor = from_driver(activated)
        key = period_key(month, now, lambda when, a=anchor: (
            month_started(a, when) if a is not None and when >= a else None))
        connection.execute(sa.text("UPDATE network_sim_states SET period = :key "
                                   "WHERE sim_sid = :sid"), {"key": key, "sid": sim_sid})


def period_key(month: str, now: datetime, period_start) -> str:  # type: ignore[no-untyped-def]
    """The key of the billing period that usage stored under a calendar month (YYYY-MM) counts
    toward: the period under way at the month's last moment, or now if that is earlier.
    `period_start(when)` gives a period's start, or None where calendar months apply."""
    first = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    when = max(first, min(add_months(first, 1) - timedelta(seconds=1), now))
    start = period_start(when) or first
    return start.strftime("%Y-%m-%dT%H:%M:%S")


def _watch(columns: str) -> None:
    """Bump the SIM facts version (0011) on updates of these columns of wireless_sims."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER network_facts_wireless_sims ON wireless_sims")
        op.execute("CREATE CONSTRAINT TRIGGER network_facts_wireless_sims AFTER UPDATE OF "
                   f"{columns} OR DELETE ON wireless_sims DEFERRABLE INITIALLY DEFERRED "
                   "FOR EACH ROW EXECUTE FUNCTION network_facts_changed()")
    else:
        op.execute(f"DROP TRIGGER {SQLITE_TRIGGER}")
        op.execute(f"CREATE TRIGGER {SQLITE_TRIGGER} AFTER UPDATE OF {columns} "
                   f"ON wireless_sims BEGIN {BUMP}; END")


def downgrade() -> None:
    op.execute("UPDATE network_sim_states SET period = substr(period, 1, 7) "
               "WHERE sim_sid IN (SELECT sid FROM wireless_sims)")
    _watch(WATCHED)
    op.drop_column("wireless_sims", "date_activated")  # not in a batch: that loses triggers
