"""proxy: account numbers, the carrier's outbox, call lookups

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import simplane.core.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "proxy_account_numbers",
        sa.Column("pk", PK, autoincrement=True, nullable=False),
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("phone_number", sa.String(length=32), nullable=False),
        sa.Column("date_created", simplane.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_proxy_account_numbers")),
        sa.UniqueConstraint("sid", name=op.f("uq_proxy_account_numbers_sid")),
        sa.UniqueConstraint("account_sid", "phone_number",
                            name=op.f("uq_proxy_account_numbers_account_sid_phone_number")),
    )
    op.create_table(
        "proxy_outbox",
        sa.Column("pk", PK, autoincrement=True, nullable=False),
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("from_number", sa.String(length=255), nullable=False),
        sa.Column("to_number", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("media_urls", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("service_sid", sa.String(length=34), nullable=True),
        sa.Column("session_sid", sa.String(length=34), nullable=True),
        sa.Column("interaction_sid", sa.String(length=34), nullable=True),
        sa.Column("date_created", simplane.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_proxy_outbox")),
        sa.UniqueConstraint("sid", name=op.f("uq_proxy_outbox_sid")),
    )
    op.create_index("ix_proxy_outbox_account", "proxy_outbox", ["account_sid", "pk"])
    op.create_index("ix_proxy_outbox_to", "proxy_outbox", ["to_number", "pk"])
    op.create_index("ix_proxy_interactions_inbound_resource", "proxy_interactions",
                    ["inbound_resource_sid"])
    op.create_index("ix_proxy_interactions_outbound_resource", "proxy_interactions",
                    ["outbound_resource_sid"])


def downgrade() -> None:
    op.drop_index("ix_proxy_interactions_outbound_resource", "proxy_interactions")
    op.drop_index("ix_proxy_interactions_inbound_resource", "proxy_interactions")
    op.drop_table("proxy_outbox")
    op.drop_table("proxy_account_numbers")
