"""Each message's owner: the API key that sent it, so that a key sees and acts on only its own messages.

Messages stored before this revision have no owner: only admin keys (GATEWAY_ADMIN_KEYS), the open API and the
operator's CLI see them.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column without a default: added in place on both engines, no table rewritten or copied.
    op.add_column("messages", sa.Column("owner", sa.String(80)))
    op.create_index("messages_owner", "messages", ["owner", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("messages_owner", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("owner")
