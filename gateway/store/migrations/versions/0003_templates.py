"""Stored templates: a subject, a text and/or an HTML part, and a version that each replacement increments.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "templates",
        sa.Column("name", sa.String(64), primary_key=True), sa.Column("version", sa.Integer, nullable=False),
        sa.Column("subject", sa.Text, nullable=False), sa.Column("text", sa.Text), sa.Column("html", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False), sa.Column("updated_at", sa.Float, nullable=False))


def downgrade() -> None:
    op.drop_table("templates")
