"""The suppression list in its addresses' code-point order on PostgreSQL too, as SQLite keeps it.

A database made with a locale (``en_US.UTF-8``, an ICU one) sorted the addresses by that language's rules, where
SQLite compares their bytes: one list came back in two orders, depending on the store. ``COLLATE "C"`` compares
bytes, and the primary key's index, rebuilt with it, still serves the listing's order. Equality is unchanged.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _collate(collation: str | None) -> None:
    if op.get_bind().dialect.name == "postgresql":  # SQLite compares bytes already, and knows no "C"
        op.alter_column("suppressions", "address", type_=sa.String(320, collation=collation),
                        existing_type=sa.String(320), existing_nullable=False)


def upgrade() -> None:
    _collate("C")


def downgrade() -> None:
    _collate(None)
