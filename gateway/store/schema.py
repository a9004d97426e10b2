"""The store's tables, as SQLAlchemy Core ``Table`` objects; the migrations create exactly these.

Times are seconds since the epoch as floating-point numbers: the same comparisons on every engine, and
fractions of a second for the short durations tests use.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

messages = Table(
    "messages", metadata,
    Column("id", String(32), primary_key=True),  # the gateway's own id, for status look-ups
    Column("message_id", Text, nullable=False),  # the Message-ID header the message carries
    Column("envelope_from", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("via", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # the summary of its recipients' states
    Column("created_at", Float, nullable=False),
    Column("send_at", Float),
    Column("expires_at", Float, nullable=False),
    # When a worker may claim it next: the next attempt, or the end of the current claim's lease. NULL once no
    # recipient is pending.
    Column("due_at", Float),
    Column("lease_token", String(32)),  # the claim in force; an outcome recorded under another one is stale
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_code", Integer),
    Column("last_reason", Text),
    Column("updated_at", Float, nullable=False),
    # The API key that sent it: its name, or an unnamed key's digest; NULL without a key (the open API, the SMTP
    # ingress, the library), when only admin keys and the CLI see it.
    Column("owner", String(80)),
    # Its tags and metadata (``mail.tags``), as JSON, for its status and its events' webhooks; NULL without any.
    Column("tags", Text),
    Column("metadata", Text),
    Index("messages_due", "due_at"),
    Index("messages_status", "status", "created_at"),
    # A key lists its own messages in the order of the list, however many other keys' there are.
    Index("messages_owner", "owner", "created_at", "id"),
)

# Kept apart from ``messages`` so that listing and claiming never read a 25 MB body; deleted once the message
# has no pending recipient.
bodies = Table(
    "bodies", metadata,
    Column("message_id", String(32), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

recipients = Table(
    "recipients", metadata,
    Column("message_id", String(32), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("email", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("code", Integer),
    Column("reason", Text),
    Column("next_attempt_at", Float),
    Column("updated_at", Float, nullable=False),
)

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(32), ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("at", Float, nullable=False),
    Column("type", String(24), nullable=False),  # an outcome (delivered, deferred...), unknown, retry, canceled
    Column("recipient", Text),
    Column("upstream", Text),
    Column("code", Integer),
    Column("text", Text),
    Index("events_message", "message_id", "id"),
)

webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("id", String(40), primary_key=True),  # the webhook-id header, the same on every retry
    Column("url", Text, nullable=False),
    Column("type", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending, delivered, failed, gone
    Column("created_at", Float, nullable=False),
    Column("due_at", Float),
    Column("lease_token", String(32)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_code", Integer),
    Column("last_error", Text),
    Index("webhook_deliveries_due", "due_at"),
)

webhook_endpoints = Table(
    "webhook_endpoints", metadata,
    Column("url", Text, primary_key=True),
    Column("gone_at", Float, nullable=False),  # it answered 410 Gone: nothing more is sent to it
    Column("detail", Text),
)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("key", String(320), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("mode", String(8), nullable=False),  # direct or queued: what an abandoned request may have done
    Column("lease_until", Float, nullable=False),  # renewed while its process lives; then it is abandoned
    Column("holder", String(32)),  # the token of the request that claimed it last (keys.holds)
    Column("status", Integer),  # NULL while the first request is in flight
    Column("mimetype", String(100)),
    Column("body", LargeBinary),
    Index("idempotency_keys_created", "created_at"),
)

# Each message's outcome within a keyed request, written as it happens, so that a request whose process died
# can still be answered with what was accepted.
request_outcomes = Table(
    "request_outcomes", metadata,
    Column("key", String(320), ForeignKey("idempotency_keys.key", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("item", Text, nullable=False),  # the batch result item, JSON
)

# Stored templates (POST /v1/templates): the service's, shared by every API key. ``version`` counts from 1 and
# grows by one with each replacement, so a message can say which one it was rendered from.
templates = Table(
    "templates", metadata,
    Column("name", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("subject", Text, nullable=False),
    Column("text", Text),
    Column("html", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# The suppression list (``mail_gateway.store.suppressions``): one row per mailbox (``address`` is its
# ``recipient_key``), which nothing is sent to until it is removed or ``expires_at`` passes.
suppressions = Table(
    "suppressions", metadata,
    # Listed in the order of its bytes on every engine (migration 0006: PostgreSQL's "C" collation).
    Column("address", String(320).with_variant(String(320, collation="C"), "postgresql"), primary_key=True),
    Column("email", Text, nullable=False),  # the address as it was given, for people to read
    Column("reason", String(16), nullable=False),  # hard-bounce, complaint, unsubscribe, manual
    Column("source", String(16), nullable=False),  # smtp, dsn, unsubscribe, api
    Column("message_id", String(32)),  # the gateway's id of the message that caused it, where there is one
    Column("detail", Text),  # the SMTP reply or the DSN's diagnostic
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float),  # NULL: until removed
    Index("suppressions_created", "created_at", "address"),
    Index("suppressions_expires", "expires_at"),
)

# Mail the SMTP ingress received for an inbound route (``mail_gateway.store.inbound``): its webhook is a row of
# ``webhook_deliveries``, and the raw bytes stay here for ``GET /v1/inbound/<id>/raw``.
inbound_messages = Table(
    "inbound_messages", metadata,
    Column("id", String(32), primary_key=True),
    Column("received_at", Float, nullable=False),
    Column("mail_from", Text, nullable=False),  # the envelope sender ("" for a null sender)
    Column("recipients", Text, nullable=False),  # the envelope recipients, a JSON list
    Column("url", Text, nullable=False),  # the route's webhook
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Index("inbound_messages_received", "received_at"),
)
