"""Webhook deliveries in the store: one row per recipient outcome, written with the outcome it reports, then
claimed, sent and retried like the messages themselves. The row's id is the ``webhook-id`` of every attempt."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from mail_gateway.settings.senders import key_name
from mail_gateway.store.schema import webhook_deliveries as deliveries
from mail_gateway.store.schema import webhook_endpoints as endpoints

EVENT_TYPES = ("delivered", "deferred", "bounced", "failed", "canceled", "suppressed")
# anymail's reject_reason of each outcome that has one: a failed recipient was retried until its lifetime ended.
_REJECT_REASONS = {"bounced": "bounced", "failed": "timed_out"}


@dataclass(frozen=True)
class RecipientEvent:
    id: str
    message_id: str
    recipient: str
    status: str
    code: int | None
    reason: str | None
    attempts: int
    owner: str | None = None  # the message's (``messages.owner``): shown by name, as the status API shows it
    tags: str | None = None  # the message's, as stored (JSON)
    metadata: str | None = None


@dataclass(frozen=True)
class WebhookDue:
    id: str
    url: str
    payload: str
    created_at: float
    attempts: int
    token: str


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def add_webhooks(conn: Connection, url: str, happened: Sequence[RecipientEvent], now: float) -> None:
    rows = []
    for e in happened:
        if e.status not in EVENT_TYPES:
            continue
        row_id = f"msg_{secrets.token_hex(12)}"
        data = {"id": e.id, "message_id": e.message_id, "recipient": e.recipient, "code": e.code,
                "reason": e.reason, "attempts": e.attempts, "api_key": key_name(e.owner),
                # django-anymail's vocabulary (``mail_gateway.suppression.events``): code written for it reads these
                "event_type": e.status, "event_id": row_id, "reject_reason": _REJECT_REASONS.get(e.status),
                "mta_response": None if e.code is None else f"{e.code} {e.reason or ''}".strip(),
                "tags": json.loads(e.tags) if e.tags else [], "metadata": json.loads(e.metadata) if e.metadata else {}}
        payload = {"type": f"message.{e.status}", "timestamp": iso(now), "data": data}
        rows.append({"id": row_id, "url": url, "type": payload["type"],
                     "payload": json.dumps(payload, separators=(",", ":")), "status": "pending", "created_at": now,
                     "due_at": now, "attempts": 0})
    gone = conn.execute(select(endpoints.c.url).where(endpoints.c.url == url)).first() is not None
    if rows:
        if gone:  # kept, for the record, but never sent
            rows = [{**row, "status": "gone", "due_at": None} for row in rows]
        conn.execute(insert(deliveries), rows)


def claim(conn: Connection, *, now: float, limit: int, lease: float) -> list[WebhookDue]:
    due = (select(deliveries.c.id, deliveries.c.url, deliveries.c.payload, deliveries.c.created_at,
                  deliveries.c.attempts).where(deliveries.c.due_at <= now).order_by(deliveries.c.due_at)
           .limit(limit).with_for_update(skip_locked=True))
    rows = conn.execute(due).all()
    if not rows:
        return []
    token = secrets.token_hex(8)
    conn.execute(update(deliveries).where(deliveries.c.id.in_([r.id for r in rows]))
                 .values(due_at=now + lease, lease_token=token))
    return [WebhookDue(r.id, r.url, r.payload, r.created_at, r.attempts, token) for r in rows]


def settle(conn: Connection, due: WebhookDue, *, status: str, code: int | None, error: str | None,
           retry_at: float | None) -> None:
    """Record one sending attempt: delivered, failed (given up), or pending again at ``retry_at``."""
    conn.execute(update(deliveries).where(deliveries.c.id == due.id, deliveries.c.lease_token == due.token)
                 .values(status=status, attempts=deliveries.c.attempts + 1, last_code=code, last_error=error,
                         due_at=retry_at, lease_token=None))


def endpoint_gone(conn: Connection, url: str, now: float, detail: str) -> int:
    """The endpoint answered 410 Gone: remember it and stop every pending delivery to it."""
    if conn.execute(select(endpoints.c.url).where(endpoints.c.url == url)).first() is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(endpoints).values(url=url, gone_at=now, detail=detail))
        except IntegrityError:  # another process was told 410 too and recorded it first (a server database)
            pass
    return conn.execute(update(deliveries).where(deliveries.c.url == url, deliveries.c.status == "pending")
                        .values(status="gone", due_at=None, lease_token=None)).rowcount


def list_deliveries(conn: Connection) -> list[dict[str, object]]:
    return [dict(r._mapping) for r in conn.execute(
        select(deliveries.c.id, deliveries.c.type, deliveries.c.status, deliveries.c.attempts,
               deliveries.c.last_code, deliveries.c.payload).order_by(deliveries.c.created_at))]
