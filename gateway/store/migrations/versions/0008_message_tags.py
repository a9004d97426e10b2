"""Each message's tags and metadata, as JSON, so that its status and its events' webhooks name them.

Messages stored before this revision have none.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns without a default: added in place on both engines, no table rewritten or copied.
    op.add_column("messages", sa.Column("tags", sa.Text))
    op.add_column("messages", sa.Column("metadata", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("metadata")
        batch.drop_column("tags")
