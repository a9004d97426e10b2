"""Inbound mail: each message the ingress received for a route, kept so its raw bytes can be fetched.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.String(32), primary_key=True), sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("mail_from", sa.Text, nullable=False), sa.Column("recipients", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False), sa.Column("size", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False))
    op.create_index("inbound_messages_received", "inbound_messages", ["received_at"])


def downgrade() -> None:
    op.drop_index("inbound_messages_received", "inbound_messages")
    op.drop_table("inbound_messages")
