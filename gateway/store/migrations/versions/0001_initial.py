"""The store's first schema: queued messages, bodies, recipients, events, webhooks, idempotency keys.

A store file of earlier versions held only ``idempotency_keys`` (without Alembic); its keys are carried over, so
a key used before the upgrade is still never sent twice.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _message_tables() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.String(32), primary_key=True), sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("envelope_from", sa.Text, nullable=False), sa.Column("size", sa.Integer, nullable=False),
        sa.Column("via", sa.String(16), nullable=False), sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False), sa.Column("send_at", sa.Float),
        sa.Column("expires_at", sa.Float, nullable=False), sa.Column("due_at", sa.Float),
        sa.Column("lease_token", sa.String(32)), sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_code", sa.Integer), sa.Column("last_reason", sa.Text),
        sa.Column("updated_at", sa.Float, nullable=False))
    op.create_index("messages_due", "messages", ["due_at"])
    op.create_index("messages_status", "messages", ["status", "created_at"])
    fk = sa.ForeignKey("messages.id", ondelete="CASCADE")
    op.create_table("bodies", sa.Column("message_id", sa.String(32), fk, primary_key=True),
                    sa.Column("data", sa.LargeBinary, nullable=False))
    op.create_table(
        "recipients",
        sa.Column("message_id", sa.String(32), sa.ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True), sa.Column("email", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False), sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("code", sa.Integer), sa.Column("reason", sa.Text), sa.Column("next_attempt_at", sa.Float),
        sa.Column("updated_at", sa.Float, nullable=False))
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(32), sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.Float, nullable=False), sa.Column("type", sa.String(24), nullable=False),
        sa.Column("recipient", sa.Text), sa.Column("upstream", sa.Text), sa.Column("code", sa.Integer),
        sa.Column("text", sa.Text))
    op.create_index("events_message", "events", ["message_id", "id"])


def _webhook_tables() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(40), primary_key=True), sa.Column("url", sa.Text, nullable=False),
        sa.Column("type", sa.String(32), nullable=False), sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False), sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("due_at", sa.Float), sa.Column("lease_token", sa.String(32)),
        sa.Column("attempts", sa.Integer, nullable=False), sa.Column("last_code", sa.Integer),
        sa.Column("last_error", sa.Text))
    op.create_index("webhook_deliveries_due", "webhook_deliveries", ["due_at"])
    op.create_table("webhook_endpoints", sa.Column("url", sa.Text, primary_key=True),
                    sa.Column("gone_at", sa.Float, nullable=False), sa.Column("detail", sa.Text))


def _key_tables() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(320), primary_key=True), sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False), sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("lease_until", sa.Float, nullable=False), sa.Column("status", sa.Integer),
        sa.Column("mimetype", sa.String(100)), sa.Column("body", sa.LargeBinary))
    op.create_index("idempotency_keys_created", "idempotency_keys", ["created_at"])
    op.create_table(
        "request_outcomes",
        sa.Column("key", sa.String(320), sa.ForeignKey("idempotency_keys.key", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True), sa.Column("item", sa.Text, nullable=False))


def upgrade() -> None:
    legacy = "idempotency_keys" in sa.inspect(op.get_bind()).get_table_names()
    if legacy:
        op.execute("DROP INDEX IF EXISTS idempotency_keys_created")
        op.rename_table("idempotency_keys", "legacy_idempotency_keys")
    _message_tables()
    _webhook_tables()
    _key_tables()
    if legacy:
        # An in-flight key keeps its creation time as its lease: its process is long gone, so it is abandoned.
        op.execute("INSERT INTO idempotency_keys (key, fingerprint, created_at, mode, lease_until, status, mimetype, "
                   "body) SELECT key, fingerprint, created, 'direct', created, status, mimetype, body "
                   "FROM legacy_idempotency_keys")
        op.drop_table("legacy_idempotency_keys")


def downgrade() -> None:
    for table in ("request_outcomes", "idempotency_keys", "webhook_endpoints", "webhook_deliveries", "events",
                  "recipients", "bodies", "messages"):
        op.drop_table(table)
