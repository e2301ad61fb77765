"""Event Streams: outbox, sinks, subscriptions, subscribed events

Revision ID: 0006
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DATE = sa.DateTime(timezone=True)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    # On PostgreSQL each event records its transaction's id: see OutboxEvent.
    txid_default = sa.text("(pg_current_xact_id()::text)::bigint" if postgres else "0")
    op.create_table(
        "event_outbox",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("txid", sa.BigInteger(), nullable=False, server_default=txid_default),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("account_sid", sa.String(34), nullable=False),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("subject", sa.String(64)),
        sa.Column("time", sa.String(32), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("published_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_event_outbox"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_event_outbox_account_position", "event_outbox",
                    ["account_sid", "txid", "pk"])
    op.create_index("ix_event_outbox_position", "event_outbox", ["txid", "pk"])

    op.create_table(
        "event_sinks",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("sid", sa.String(34), nullable=False),
        sa.Column("account_sid", sa.String(34), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("sink_type", sa.String(16), nullable=False),
        sa.Column("sink_configuration_sealed", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("test_id", sa.String(36)),
        sa.Column("test_pending", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("cursor_txid", sa.BigInteger(), nullable=False),
        sa.Column("cursor_pk", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", DATE, nullable=False),
        sa.Column("failing_since", DATE),
        sa.Column("last_error", sa.Text()),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_until", sa.Float()),
        sa.Column("date_created", DATE, nullable=False),
        sa.Column("date_updated", DATE, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_event_sinks"),
        sa.UniqueConstraint("sid", name="uq_event_sinks_sid"),
    )
    op.create_index("ix_event_sinks_account", "event_sinks", ["account_sid", "pk"])
    op.create_index("ix_event_sinks_due", "event_sinks", ["status", "next_attempt_at"])

    op.create_table(
        "event_subscriptions",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("sid", sa.String(34), nullable=False),
        sa.Column("account_sid", sa.String(34), nullable=False),
        sa.Column("sink_pk", PK, nullable=False),
        sa.Column("sink_sid", sa.String(34), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("date_created", DATE, nullable=False),
        sa.Column("date_updated", DATE, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_event_subscriptions"),
        sa.UniqueConstraint("sid", name="uq_event_subscriptions_sid"),
        sa.ForeignKeyConstraint(["sink_pk"], ["event_sinks.pk"],
                                name="fk_event_subscriptions_sink_pk_event_sinks"),
    )
    op.create_index("ix_event_subscriptions_account", "event_subscriptions", ["account_sid", "pk"])
    op.create_index("ix_event_subscriptions_sink_pk", "event_subscriptions", ["sink_pk"])

    op.create_table(
        "event_subscribed_events",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("subscription_pk", PK, nullable=False),
        sa.Column("account_sid", sa.String(34), nullable=False),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("since_txid", sa.BigInteger(), nullable=False),
        sa.Column("since_pk", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_event_subscribed_events"),
        sa.UniqueConstraint("subscription_pk", "type",
                            name="uq_event_subscribed_events_subscription_pk_type"),
        sa.ForeignKeyConstraint(["subscription_pk"], ["event_subscriptions.pk"],
                                name="fk_event_subscribed_events_subscription_pk_event_subscriptions",
                                ondelete="CASCADE"),
    )


def downgrade() -> None:
    op.drop_table("event_subscribed_events")
    op.drop_table("event_subscriptions")
    op.drop_table("event_sinks")
    op.drop_table("event_outbox")
