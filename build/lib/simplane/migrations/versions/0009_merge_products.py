"""merge: Proxy voice, Event Streams, Super SIM and network enforcement, made side by side on
0004, become one history again

Revision ID: 0009
Revises: 0005, 0006, 0007, 0008
"""

from __future__ import annotations

revision = "0009"
down_revision = ("0005", "0006", "0007", "0008")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
