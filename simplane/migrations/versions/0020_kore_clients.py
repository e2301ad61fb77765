"""KORE's flavour: API clients (OAuth client credentials) of accounts, and the generation that
revoking one moves on

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "kore_clients",
        sa.Column("pk", PK, autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("account_sid", sa.String(34), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("client_type", sa.String(16), nullable=False),
        sa.Column("client_owner", sa.String(255), nullable=True),
        sa.Column("products", sa.JSON(), nullable=False),
        sa.Column("lifetime", sa.Integer(), nullable=False),
        sa.Column("locked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column("date_created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("date_revoked", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_kore_clients"),
        sa.UniqueConstraint("client_id", name="uq_kore_clients_client_id"),
        sa.ForeignKeyConstraint(["account_sid"], ["accounts.sid"], ondelete="CASCADE",
                                name="fk_kore_clients_account_sid_accounts"),
    )
    op.create_index("ix_kore_clients_account", "kore_clients", ["account_sid", "pk"])
    state = op.create_table(
        "kore_auth_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_kore_auth_state"),
    )
    op.bulk_insert(state, [{"id": 1, "generation": 0}])


def downgrade() -> None:
    op.drop_table("kore_auth_state")
    op.drop_index("ix_kore_clients_account", table_name="kore_clients")
    op.drop_table("kore_clients")
