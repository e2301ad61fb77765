"""KORE's webhooks: the accounts' signing secrets; a callback sent as the API it was configured
through (its flavour, and the event's id for kore-idempotency-token); the flavour of the
resources whose callback URLs a KORE client set; the RatePlan's usage notification URL and method

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from simplane.core.db import UTCDateTime

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Resources whose callback URL is set through the API, and the column saying through which.
FLAVOURED = (("wireless_commands", "flavour"), ("supersim_sms_commands", "flavour"),
             ("supersim_ip_commands", "flavour"), ("supersim_esim_profiles", "flavour"),
             ("supersim_sims", "callback_flavour"), ("wireless_sims", "status_callback_flavour"),
             ("wireless_sims", "commands_callback_flavour"),
             ("supersim_fleets", "sms_commands_flavour"),
             ("supersim_fleets", "ip_commands_flavour"))


def upgrade() -> None:
    op.create_table(
        "kore_webhook_secrets",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(30), nullable=False),
        sa.Column("account_sid", sa.String(34), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("date_created", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_modified", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_sid"], ["accounts.sid"], ondelete="CASCADE"),
        sa.UniqueConstraint("id"),
        sa.UniqueConstraint("account_sid", "status", name="uq_kore_webhook_secrets_account_status"),
    )
    with op.batch_alter_table("callbacks") as batch:
        batch.add_column(sa.Column("flavour", sa.String(8), nullable=False,
                                   server_default="twilio"))
        batch.add_column(sa.Column("token", sa.String(36), nullable=True))
    for table, column in FLAVOURED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column(column, sa.String(8), nullable=False,
                                       server_default="twilio"))
    with op.batch_alter_table("wireless_rate_plans") as batch:
        batch.add_column(sa.Column("usage_notification_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("usage_notification_method", sa.String(8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("wireless_rate_plans") as batch:
        batch.drop_column("usage_notification_method")
        batch.drop_column("usage_notification_url")
    for table, column in FLAVOURED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_column("token")
        batch.drop_column("flavour")
    op.drop_table("kore_webhook_secrets")
