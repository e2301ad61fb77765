"""network: the SIM facts version, bumped by triggers whenever what ingest reads of a SIM (its
account, status, rate plan or Fleet, the Fleet's limits and Network Access Profile) may have
changed, so that ingest keeps those facts between batches (see simplane.network.cache)

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# table → the events that may change a SIM's facts (UPDATE only of the columns ingest reads).
WATCHED = {
    "wireless_sims": "UPDATE OF account_sid, imsi, status, rate_plan_pk OR DELETE",
    "wireless_rate_plans": "UPDATE OR DELETE",
    "supersim_sims": ("UPDATE OF account_sid, iccid, imsi, unique_name, status, date_ready, "
                      "date_activated, fleet_pk OR DELETE"),
    "supersim_fleets": "UPDATE OF sid, data_enabled, data_limit, nap_pk OR DELETE",
    "supersim_nap_networks": "INSERT OR UPDATE OR DELETE",
}
BUMP = "UPDATE network_facts SET version = version + 1"

# On PostgreSQL the bump runs at commit (a deferred constraint trigger), once per transaction:
# the row is locked only for the commit's last moment, after every other lock the transaction
# takes, so writers of SIMs never deadlock on it, and ingest (which only reads it) never waits.
PG_FUNCTION = f"""
CREATE FUNCTION network_facts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('simplane.facts_changed', true) IS DISTINCT FROM txid_current()::text THEN
        {BUMP};
        PERFORM set_config('simplane.facts_changed', txid_current()::text, true);
    END IF;
    RETURN NULL;
END $$"""


def upgrade() -> None:
    table = op.create_table(
        "network_facts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(table, [{"id": 1, "version": 0}])
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(PG_FUNCTION)
    for watched, events in WATCHED.items():
        if postgres:
            op.execute(f"CREATE CONSTRAINT TRIGGER network_facts_{watched} AFTER {events} "
                       f"ON {watched} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                       "EXECUTE FUNCTION network_facts_changed()")
            continue
        # SQLite: a trigger per event (it takes one), bumping in the writer's transaction.
        for i, event in enumerate(events.split(" OR ")):
            op.execute(f"CREATE TRIGGER network_facts_{watched}_{i} AFTER {event} "
                       f"ON {watched} BEGIN {BUMP}; END")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for watched, events in WATCHED.items():
        if postgres:
            op.execute(f"DROP TRIGGER network_facts_{watched} ON {watched}")
        else:
            for i in range(len(events.split(" OR "))):
                op.execute(f"DROP TRIGGER network_facts_{watched}_{i}")
    if postgres:
        op.execute("DROP FUNCTION network_facts_changed()")
    op.drop_table("network_facts")
