"""A bounce that arrives after delivery: the upstream accepted the message, a later server refused it and sent a
DSN back. The recipient's state becomes ``bounced`` and the message's status is summed up again."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from mail_gateway.mail.addresses import envelope_address, recipient_key
from mail_gateway.store.schema import messages, recipients
from mail_gateway.store.status import PENDING, summarize


def _key(address: str) -> str | None:
    try:
        return recipient_key(envelope_address(address))
    except ValueError:
        return None


def mark_bounced(conn: Connection, message_id: str, recipient: str, *, reason: str, now: float) -> bool:
    """Mark ``recipient`` of the queued message ``message_id`` bounced with ``reason`` (the DSN's diagnostic);
    False when the message has no such recipient (gone, or the DSN names an address it forwarded to)."""
    wanted = _key(recipient)
    rows = conn.execute(select(recipients.c.position, recipients.c.email, recipients.c.status)
                        .where(recipients.c.message_id == message_id)).all()
    hit = [r.position for r in rows if wanted is not None and _key(r.email) == wanted]
    if not hit:
        return False
    conn.execute(update(recipients).where(recipients.c.message_id == message_id, recipients.c.position.in_(hit))
                 .values(status="bounced", code=None, reason=reason, next_attempt_at=None, updated_at=now))
    states = ["bounced" if r.position in hit else r.status for r in rows]
    summed = {"status": summarize(states), "last_reason": reason, "updated_at": now}
    if not any(state in PENDING for state in states):
        summed["due_at"] = None  # nothing left for a worker to claim
    conn.execute(update(messages).where(messages.c.id == message_id).values(**summed))
    return True
