"""Workers' side of the queue: claim due messages under a lease, renew or release it (``recording`` records what
each attempt did).

A claim moves the message's ``due_at`` to the end of the lease and stamps it with a token. A worker that dies
simply stops renewing: when the lease ends the message is due again and another worker claims it, recording in
its history an attempt whose outcome is unknown (the dead worker may have sent it). An outcome is
applied only under the token that claimed it, so a worker that outlived its lease cannot overwrite a newer claim.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from mail_gateway.store import hot, suppressions
from mail_gateway.store.blobs import read_body
from mail_gateway.store.notify import announce
from mail_gateway.store.schema import bodies, events, messages, recipients
from mail_gateway.store.status import due_at, summarize

PREFETCH_BYTES = 256 * 1024


@dataclass(frozen=True)
class Claimed:
    id: str
    message_id: str
    envelope_from: str
    created_at: float
    expires_at: float
    token: str
    recipients: tuple[tuple[int, str, int], ...]  # position, email, attempts so far, of each pending recipient
    data: bytes | None = field(default=None, repr=False)  # the body, read with the claim when small
    owner: str | None = None  # the API key that sent it, for the webhooks its outcomes raise
    generation: int = 0  # the store's generation it was claimed from (``Store.generation``)
    on_list: frozenset[str] = frozenset()  # its pending recipients on the suppression list when it was claimed
    tags: str | None = None  # as stored (JSON), for the webhooks its outcomes raise
    metadata: str | None = None


@dataclass(frozen=True)
class RecipientUpdate:
    position: int
    email: str
    status: str  # the new state
    event: str  # what the history says: the state, or "unknown" (lost reply after the final dot)
    code: int | None = None
    reason: str | None = None
    next_attempt_at: float | None = None


@dataclass(frozen=True)
class Attempt:
    message: Claimed
    at: float
    upstream: str | None
    updates: tuple[RecipientUpdate, ...]


def claim(conn: Connection, *, now: float, limit: int, lease: float, generation: int = 0) -> list[Claimed]:
    """Up to ``limit`` due messages, oldest due first, leased for ``lease`` seconds. On a server database
    ``SKIP LOCKED`` lets concurrent claimers pass over each other's rows; SQLite's one writer needs none."""
    found = conn.execute(hot.DUE, {"b_now": now, "b_limit": limit}).all()
    if not found:
        return []
    ids = [row.id for row in found]
    token = secrets.token_hex(8)
    conn.execute(hot.LEASED, {"b_ids": ids, "b_until": now + lease, "b_token": token})
    pending: dict[str, list[tuple[int, str, int]]] = {i: [] for i in ids}
    for row in conn.execute(hot.PENDING_RECIPIENTS, {"b_ids": ids}):
        pending[row.message_id].append((row.position, row.email, row.attempts))
    _lost_attempts(conn, [row.id for row in found if row.lease_token is not None], pending, now)
    # Small bodies come with the claim: one read transaction less per message. Large ones are read one at a
    # time when delivered, so claims in hand never hold many megabytes.
    small = [r.id for r in found if r.size <= PREFETCH_BYTES]
    data = {row.message_id: row.data for row in conn.execute(hot.BODIES, {"b_ids": small})} if small else {}
    # The suppression list is read here too, for the whole claim: one query, not a transaction per message.
    on_list = suppressions.suppressed(conn, {email for p in pending.values() for _, email, _ in p}, now=now)
    return [Claimed(r.id, r.message_id, r.envelope_from, r.created_at, r.expires_at, token, tuple(pending[r.id]),
                    data.get(r.id), r.owner, generation, frozenset(e for _, e, _ in pending[r.id] if e in on_list),
                    r.tags, r.metadata)
            for r in found]


def _lost_attempts(conn: Connection, expired: list[str], pending: dict[str, list[tuple[int, str, int]]],
                   now: float) -> None:
    """A claim whose lease ended was neither recorded nor released: its worker died or stalled, perhaps after
    the upstream took the message. The history says so, as for a reply lost after the final dot, because the
    next attempt may deliver a second copy."""
    rows = [{"message_id": i, "at": now, "type": "unknown", "recipient": email,
             "text": "the worker holding this message stopped before recording its attempt (its lease ended); "
                     "the upstream may have received it"}
            for i in expired for _, email, _ in pending[i]]
    if rows:
        conn.execute(insert(events), rows)


def body(conn: Connection, message_id: str) -> bytes | None:
    return read_body(conn, message_id)


def renew(conn: Connection, claimed: Sequence[Claimed], until: float) -> None:
    for token in {c.token for c in claimed}:
        ids = [c.id for c in claimed if c.token == token]
        conn.execute(update(messages).where(messages.c.id.in_(ids), messages.c.lease_token == token)
                     .values(due_at=until))


def release(conn: Connection, claimed: Sequence[Claimed], now: float) -> None:
    """Give claimed messages back untried (a worker stopping): due again at once, for any worker."""
    for c in claimed:
        conn.execute(update(messages).where(messages.c.id == c.id, messages.c.lease_token == c.token)
                     .values(due_at=now, lease_token=None))
    if claimed:
        announce(conn)


def sum_up(conn: Connection, message_id: str, now: float) -> str:
    """Set the message's status and next due time from its recipients; drop its body once none is pending.
    (Recording an attempt sums up in its own statements, ``recording``.)"""
    rows = conn.execute(hot.RECIPIENT_STATES, {"b_message": message_id}).all()
    due = due_at(((r.status, r.next_attempt_at) for r in rows), now)
    status = summarize(r.status for r in rows)
    conn.execute(hot.SUMMED_UP, {"b_message": message_id, "b_status": status, "b_due": due, "b_at": now})
    if due is None:
        conn.execute(hot.DROP_BODY, {"b_message": message_id})
    return status


def purge_finished(conn: Connection, before: float) -> int:
    """Forget messages that ended before ``before`` (their recipients and events go with them)."""
    old = select(messages.c.id).where(messages.c.due_at.is_(None), messages.c.updated_at < before)
    for table in (events, recipients, bodies):
        conn.execute(delete(table).where(table.c.message_id.in_(old)))
    return conn.execute(delete(messages).where(messages.c.due_at.is_(None),
                                               messages.c.updated_at < before)).rowcount


def next_due(conn: Connection) -> float | None:
    """When the next message is due (perhaps already), or None when nothing is pending."""
    return conn.execute(select(func.min(messages.c.due_at))).scalar()
