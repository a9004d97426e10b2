"""Idempotency keys: the token of the request that claimed each one last, so that a request whose key a retry took
over writes nothing (``store.keys``).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Keys claimed before the upgrade have no token: a request of the old version finishes them as it did.
    op.add_column("idempotency_keys", sa.Column("holder", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("holder")
