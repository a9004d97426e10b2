"""Queued messages in the store: write new ones, read one with its recipients and events, list them."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, or_, select, true
from sqlalchemy.engine import Connection

from mail_gateway.store.notify import announce
from mail_gateway.store.schema import bodies, events, messages, recipients
from mail_gateway.store.status import shown


def new_id() -> str:
    """Sortable by time (milliseconds, hex) and unique (random tail): 22 characters. The tail needs to be unique,
    not secret (any client with access can list the ids), so it comes from ``random``, which needs no system call:
    ``secrets`` asks the kernel each time, and under load every such call made the request thread wait for the GIL
    again (a tenth of a queued request's time in ``make bench``). ``random`` is reseeded in forked processes."""
    return f"{time.time_ns() // 1_000_000:012x}{random.getrandbits(40):010x}"


@dataclass(frozen=True)
class NewMessage:
    id: str
    message_id: str
    envelope_from: str
    recipients: tuple[str, ...]
    data: bytes
    via: str
    created_at: float
    send_at: float | None
    expires_at: float

    @property
    def status(self) -> str:
        return "scheduled" if self.send_at is not None and self.send_at > self.created_at else "queued"


def enqueue(conn: Connection, new: Sequence[NewMessage]) -> None:
    """Insert every message, its body and its recipients (three multi-row statements)."""
    conn.execute(insert(messages), [
        {"id": m.id, "message_id": m.message_id, "envelope_from": m.envelope_from, "size": len(m.data),
         "via": m.via, "status": m.status, "created_at": m.created_at, "send_at": m.send_at,
         "expires_at": m.expires_at, "due_at": max(m.send_at or m.created_at, m.created_at), "attempts": 0,
         "updated_at": m.created_at} for m in new])
    conn.execute(insert(bodies), [{"message_id": m.id, "data": m.data} for m in new])
    conn.execute(insert(recipients), [
        {"message_id": m.id, "position": i, "email": email, "status": m.status, "attempts": 0,
         "next_attempt_at": max(m.send_at or m.created_at, m.created_at), "updated_at": m.created_at}
        for m in new for i, email in enumerate(m.recipients)])
    if any(m.status == "queued" for m in new):
        announce(conn)


MESSAGE_FIELDS = (messages.c.id, messages.c.message_id, messages.c.status, messages.c.created_at,
                  messages.c.send_at, messages.c.envelope_from, messages.c.size, messages.c.attempts,
                  messages.c.last_code, messages.c.last_reason, messages.c.due_at, messages.c.via)


def _message(row: Any, now: float) -> dict[str, Any]:
    data = dict(row._mapping)
    data["status"] = shown(data["status"], data["due_at"], now)
    return data


def get_message(conn: Connection, message_id: str, now: float) -> dict[str, Any] | None:
    """The message, its recipients and its events, or None."""
    row = conn.execute(select(*MESSAGE_FIELDS).where(messages.c.id == message_id)).first()
    if row is None:
        return None
    found = _message(row, now)
    found["recipients"] = [
        {**dict(r._mapping), "status": shown(r.status, r.next_attempt_at, now)}
        for r in conn.execute(select(recipients.c.email, recipients.c.status, recipients.c.attempts,
                                     recipients.c.code, recipients.c.reason, recipients.c.next_attempt_at)
                              .where(recipients.c.message_id == message_id).order_by(recipients.c.position))]
    found["events"] = [dict(e._mapping) for e in conn.execute(
        select(events.c.at, events.c.type, events.c.recipient, events.c.upstream, events.c.code, events.c.text)
        .where(events.c.message_id == message_id).order_by(events.c.id))]
    return found


def _status_filter(status: str, now: float) -> Any:
    # A scheduled message whose time has come is listed as queued, as it is shown.
    if status == "scheduled":
        return (messages.c.status == "scheduled") & (messages.c.due_at > now)
    if status == "queued":
        return or_(messages.c.status == "queued", (messages.c.status == "scheduled") & (messages.c.due_at <= now))
    return messages.c.status == status


def list_messages(conn: Connection, *, status: str | None, limit: int, start: int, now: float,
                  pending: bool = False) -> tuple[int, list[dict[str, Any]]]:
    """How many match, and one page of them, oldest first; ``pending``: only messages with a recipient pending."""
    where = _status_filter(status, now) if status else true()
    if pending:
        where = where & messages.c.due_at.is_not(None)
    total = conn.execute(select(func.count()).select_from(messages).where(where)).scalar_one()
    rows = conn.execute(select(*MESSAGE_FIELDS).where(where).order_by(messages.c.created_at, messages.c.id)
                        .offset(start).limit(limit))
    return total, [_message(row, now) for row in rows]


def pending_summary(conn: Connection) -> dict[str, Any]:
    """Counts by status and the creation time of the oldest message still pending (for metrics)."""
    counts = dict(conn.execute(select(messages.c.status, func.count()).group_by(messages.c.status)).all())
    oldest = conn.execute(select(func.min(messages.c.created_at)).where(messages.c.due_at.is_not(None))).scalar()
    return {"counts": counts, "oldest_pending": oldest}
