"""The suppression list: one row per mailbox, with its reason, source, cause and optional expiry.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suppressions",
        sa.Column("address", sa.String(320), primary_key=True), sa.Column("email", sa.Text, nullable=False),
        sa.Column("reason", sa.String(16), nullable=False), sa.Column("source", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(32)), sa.Column("detail", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False), sa.Column("expires_at", sa.Float))
    op.create_index("suppressions_created", "suppressions", ["created_at", "address"])
    op.create_index("suppressions_expires", "suppressions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("suppressions_expires", "suppressions")
    op.drop_index("suppressions_created", "suppressions")
    op.drop_table("suppressions")
