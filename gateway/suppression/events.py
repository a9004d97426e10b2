"""The events vocabulary, django-anymail's, and the one way to record an event on a message.

Code written against anymail's normalized events reads these unchanged: an ``event_type`` from ``EVENT_TYPES``,
an ``event_id`` for de-duplication, a ``reject_reason`` from ``REJECT_REASONS`` where something was refused, and
the upstream's reply as ``mta_response``. ``record_event`` adds the event to the message's history (``GET
/v1/messages/{id}``) and, with a webhook URL, queues a signed, retried webhook (``mail_gateway.queue.webhooks``
sends the rows) in the caller's transaction, so both or neither are written.
"""

from __future__ import annotations

import json
import secrets
import time

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from mail_gateway.store.messages import labels
from mail_gateway.store.schema import events, messages, webhook_deliveries, webhook_endpoints
from mail_gateway.store.webhooks import iso

# anymail's event types, and the gateway's own: a recipient skipped because it is suppressed, a delivery
# reported late by a DSN (``Action: delayed``), and a queued recipient canceled through the status API.
EVENT_TYPES = ("queued", "sent", "rejected", "failed", "bounced", "deferred", "delivered", "autoresponded",
               "opened", "clicked", "complained", "unsubscribed", "subscribed", "inbound", "unknown",
               "suppressed", "delayed", "canceled")
REJECT_REASONS = ("invalid", "bounced", "timed_out", "blocked", "spam", "unsubscribed", "other")


def _event_id() -> str:
    return f"evt_{secrets.token_hex(12)}"


def event_payload(*, event_type: str, event_id: str, message_id: str | None, recipient: str | None,
                  reject_reason: str | None, mta_response: str | None, detail: str | None, now: float,
                  tags: list[str] | None = None, metadata: dict[str, str] | None = None) -> dict[str, object]:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"event_type must be one of {EVENT_TYPES}, not {event_type!r}")
    if reject_reason is not None and reject_reason not in REJECT_REASONS:
        raise ValueError(f"reject_reason must be one of {REJECT_REASONS}, not {reject_reason!r}")
    data: dict[str, object] = {"event_type": event_type, "event_id": event_id, "id": message_id, "recipient": recipient,
            "reject_reason": reject_reason, "mta_response": mta_response, "detail": detail,
            "timestamp": iso(now)}
    if tags is not None:  # an event of a message sent (as anymail's tracking events), not of mail received
        data.update(tags=tags, metadata=metadata or {})
    return {"type": f"message.{event_type}", "timestamp": iso(now), "data": data}


def record_event(conn: Connection, *, event_type: str, message_id: str | None, recipient: str | None,
                 reject_reason: str | None = None, mta_response: str | None = None, detail: str | None = None,
                 webhook_url: str | None = None, now: float | None = None) -> str:
    """Record one event: in ``message_id``'s history when that queued message exists, and as a webhook to
    ``webhook_url`` when one is given. Its ``event_id``, the same in both."""
    at = time.time() if now is None else now
    event_id = _event_id()
    found = None if message_id is None else conn.execute(
        select(messages.c.tags, messages.c.metadata).where(messages.c.id == message_id)).first()
    tags, metadata = labels(*found) if found is not None else ([], {})
    payload = event_payload(event_type=event_type, event_id=event_id, message_id=message_id, recipient=recipient,
                            reject_reason=reject_reason, mta_response=mta_response, detail=detail, now=at,
                            tags=tags, metadata=metadata)
    if found is not None:
        conn.execute(insert(events).values(message_id=message_id, at=at, type=event_type, recipient=recipient,
                                           text=mta_response or detail))
    if webhook_url is not None:
        gone = conn.execute(select(webhook_endpoints.c.url).where(webhook_endpoints.c.url == webhook_url)).first()
        conn.execute(insert(webhook_deliveries).values(
            id=f"msg_{secrets.token_hex(12)}", url=webhook_url, type=payload["type"],
            payload=json.dumps(payload, separators=(",", ":")), status="gone" if gone else "pending",
            created_at=at, due_at=None if gone else at, attempts=0))
    return event_id
