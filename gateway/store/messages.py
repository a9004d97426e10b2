"""Queued messages in the store: write new ones, read one with its recipients and events, list them."""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, func, insert, literal, or_, select, true
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from mail_gateway.settings.senders import key_name
from mail_gateway.store.blobs import write_bodies
from mail_gateway.store.notify import announce
from mail_gateway.store.schema import events, messages, recipients
from mail_gateway.store.status import shown

_ID = re.compile(r"[!-~]+")
_SURROGATE = re.compile("[\ud800-\udfff]")


def could_be_id(text: str) -> bool:
    """Whether ``text`` is made of the characters of every id the gateway makes (printable ASCII): one holding
    anything else (a NUL, which PostgreSQL cannot compare; a lone surrogate, which no store can encode) is no
    message's, and the store need not be asked."""
    return _ID.fullmatch(text) is not None


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
    owner: str | None = None  # the API key that sent it (``Client.owner``)
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "scheduled" if self.send_at is not None and self.send_at > self.created_at else "queued"


def enqueue(conn: Connection, new: Sequence[NewMessage]) -> None:
    """Insert every message, its body and its recipients (three multi-row statements)."""
    conn.execute(insert(messages), [
        {"id": m.id, "message_id": m.message_id, "envelope_from": m.envelope_from, "size": len(m.data),
         "via": m.via, "status": m.status, "created_at": m.created_at, "send_at": m.send_at,
         "expires_at": m.expires_at, "due_at": max(m.send_at or m.created_at, m.created_at), "attempts": 0,
         "updated_at": m.created_at, "owner": m.owner, "tags": json.dumps(m.tags) if m.tags else None,
         "metadata": json.dumps(m.metadata) if m.metadata else None} for m in new])
    write_bodies(conn, [(m.id, m.data) for m in new])  # large ones in place, not copied twice over
    conn.execute(insert(recipients), [
        {"message_id": m.id, "position": i, "email": email, "status": m.status, "attempts": 0,
         "next_attempt_at": max(m.send_at or m.created_at, m.created_at), "updated_at": m.created_at}
        for m in new for i, email in enumerate(m.recipients)])
    if any(m.status == "queued" for m in new):
        announce(conn)


MESSAGE_FIELDS = (messages.c.id, messages.c.message_id, messages.c.status, messages.c.created_at,
                  messages.c.send_at, messages.c.envelope_from, messages.c.size, messages.c.attempts,
                  messages.c.last_code, messages.c.last_reason, messages.c.due_at, messages.c.via, messages.c.owner,
                  messages.c.tags, messages.c.metadata)


def labels(tags: str | None, metadata: str | None) -> tuple[list[str], dict[str, str]]:
    """A message's tags and metadata from their columns (NULL where it has none)."""
    return (json.loads(tags) if tags else []), (json.loads(metadata) if metadata else {})


def _message(row: Any, now: float) -> dict[str, Any]:
    data = dict(row._mapping)
    data["status"] = shown(data["status"], data["due_at"], now)
    data["api_key"] = key_name(data.pop("owner"))
    data["tags"], data["metadata"] = labels(data["tags"], data["metadata"])
    return data


def owned_by(owner: str | None) -> Any:
    """The messages ``owner`` may see: its own, or every one for None (admin keys, the open API, the CLI). A
    message of another owner is then as absent as an unknown id, so ids cannot be probed."""
    return true() if owner is None else messages.c.owner == owner


def get_message(conn: Connection, message_id: str, now: float, owner: str | None = None) -> dict[str, Any] | None:
    """The message, its recipients and its events, or None (also when it is not ``owner``'s)."""
    row = conn.execute(select(*MESSAGE_FIELDS).where(messages.c.id == message_id, owned_by(owner))).first()
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


def _status_filter(status: str, now: float, column: Any = messages.c.status) -> Any:
    # A scheduled message whose time has come is listed as queued, as it is shown.
    if status == "scheduled":
        return (column == "scheduled") & (messages.c.due_at > now)
    if status == "queued":
        return or_(column == "queued", (column == "scheduled") & (messages.c.due_at <= now))
    return column == status


def _status_column(conn: Connection, owner: str | None) -> Any:
    """The status as a list of ``owner``'s messages filters on it. SQLite keeps no statistics, and for "this key's
    messages in this state" it would as soon walk ``messages_status`` (every key's messages in that state) as the
    key's own in ``messages_owner``: its no-op unary ``+`` is its documented way to keep an index out of the
    choice. PostgreSQL's planner weighs the two by its statistics."""
    if owner is None or conn.dialect.name != "sqlite":
        return messages.c.status
    return UnaryExpression(messages.c.status, operator=custom_op("+"), type_=messages.c.status.type)


def ascii_lowered(conn: Connection, text: Any) -> Any:
    """``text`` with its ASCII letters lowered by the database, alike on both engines: SQLite's lower() folds ASCII
    alone; PostgreSQL's follows the database's locale, unless told to compare as "C" (which folds ASCII alone too).
    A text lowered by Python ('ÉLODIE' as 'élodie') would miss the very address it was copied from."""
    return func.lower(text.collate("C") if conn.dialect.name == "postgresql" else text)


def _holds(conn: Connection, column: Any, text: str) -> Any:
    # LIKE folds ASCII case on SQLite and not on PostgreSQL: a position is exact on both.
    return (func.instr(column, text) if conn.dialect.name == "sqlite" else func.strpos(column, text)) > 0


def _tagged(conn: Connection, tag: str) -> Any:
    """Messages with ``tag`` among their tags, exactly. Each is written in a JSON list after "[" or ", " (a tag
    holds no comma, so neither is ever inside one), up to its closing quote."""
    element = json.dumps([tag])[1:-1]
    return or_(_holds(conn, messages.c.tags, "[" + element), _holds(conn, messages.c.tags, ", " + element))


def _comparable(text: str) -> bool:
    """Whether a store can compare ``text``: PostgreSQL holds no NUL, and no store encodes a lone surrogate (what
    a command line argument of bytes that are not UTF-8 gives). No stored address holds either."""
    return "\x00" not in text and not _SURROGATE.search(text)


def _sent_to(conn: Connection, address: str) -> Any:
    """Messages with ``address`` among their recipients, as it was sent, whatever the case of its ASCII letters."""
    return exists().where(recipients.c.message_id == messages.c.id,
                          ascii_lowered(conn, recipients.c.email) == ascii_lowered(conn, literal(address)))


def list_messages(conn: Connection, *, status: str | None, limit: int, start: int, now: float,
                  pending: bool = False, owner: str | None = None, tag: str | None = None,
                  recipient: str | None = None) -> tuple[int, list[dict[str, Any]]]:
    """How many match, and one page of them, oldest first; ``pending``: only messages with a recipient pending;
    ``owner``: only its messages (the index ``messages_owner`` finds them, in order); ``tag``, ``recipient``: only
    those with that tag, or sent to that address."""
    where = owned_by(owner) & (_status_filter(status, now, _status_column(conn, owner)) if status else true())
    if pending:
        where = where & messages.c.due_at.is_not(None)
    if tag is not None:
        where = where & _tagged(conn, tag)
    if recipient is not None:
        if not _comparable(recipient):
            return 0, []
        where = where & _sent_to(conn, recipient)
    total = conn.execute(select(func.count()).select_from(messages).where(where)).scalar_one()
    rows = conn.execute(select(*MESSAGE_FIELDS).where(where).order_by(messages.c.created_at, messages.c.id)
                        .offset(start).limit(limit))
    return total, [_message(row, now) for row in rows]


def pending_summary(conn: Connection) -> dict[str, Any]:
    """Counts by status and the creation time of the oldest message still pending (for metrics)."""
    counts = dict(conn.execute(select(messages.c.status, func.count()).group_by(messages.c.status)).all())
    oldest = conn.execute(select(func.min(messages.c.created_at)).where(messages.c.due_at.is_not(None))).scalar()
    return {"counts": counts, "oldest_pending": oldest}
