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

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from mail_gateway.store.schema import bodies, events, messages, recipients
from mail_gateway.store.status import PENDING, summarize


@dataclass(frozen=True)
class Claimed:
    id: str
    message_id: str
    envelope_from: str
    created_at: float
    expires_at: float
    token: str
    recipients: tuple[tuple[int, str, int], ...]  # position, email, attempts so far, of each pending recipient
    data: bytes | None = field(default=None, repr=False)  # the body, when it came with the claim


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


# Bodies up to this size come with the claim, read in the same transaction; larger ones are read when sent, so
# that a claim never holds many large messages in memory at once.
INLINE_BODY_BYTES = 256 * 1024
# Built once: building and caching a statement costs SQLAlchemy more than SQLite spends running it.
_DUE = (select(messages.c.id, messages.c.lease_token, messages.c.message_id, messages.c.envelope_from,
               messages.c.created_at, messages.c.expires_at, messages.c.size)
        .where(messages.c.due_at <= bindparam("now")).order_by(messages.c.due_at).limit(bindparam("limit"))
        .with_for_update(skip_locked=True))
_TAKE = (update(messages).where(messages.c.id.in_(bindparam("ids", expanding=True)))
         .values(due_at=bindparam("until"), lease_token=bindparam("token")))
_PENDING = (select(recipients.c.message_id, recipients.c.position, recipients.c.email, recipients.c.attempts)
            .where(recipients.c.message_id.in_(bindparam("ids", expanding=True)), recipients.c.status.in_(PENDING))
            .order_by(recipients.c.message_id, recipients.c.position))
_BODIES = select(bodies.c.message_id, bodies.c.data).where(bodies.c.message_id.in_(bindparam("ids", expanding=True)))


def claim(conn: Connection, *, now: float, limit: int, lease: float) -> list[Claimed]:
    """Up to ``limit`` due messages, oldest due first, leased for ``lease`` seconds, with their bodies when
    small. On a server database ``SKIP LOCKED`` lets concurrent claimers pass over each other's rows; SQLite's
    one writer needs none."""
    found = conn.execute(_DUE, {"now": now, "limit": limit}).all()
    if not found:
        return []
    ids = [r.id for r in found]
    token = secrets.token_hex(8)
    conn.execute(_TAKE, {"ids": ids, "until": now + lease, "token": token})
    pending: dict[str, list[tuple[int, str, int]]] = {i: [] for i in ids}
    for row in conn.execute(_PENDING, {"ids": ids}):
        pending[row.message_id].append((row.position, row.email, row.attempts))
    lapsed = [r.id for r in found if r.lease_token is not None]
    if lapsed:
        _record_lapsed(conn, {i: pending[i] for i in lapsed}, now)
    small = [r.id for r in found if r.size <= INLINE_BODY_BYTES]
    data = dict(conn.execute(_BODIES, {"ids": small}).all()) if small else {}
    return [Claimed(r.id, r.message_id, r.envelope_from, r.created_at, r.expires_at, token, tuple(pending[r.id]),
                    data.get(r.id)) for r in found]


LAPSED = ("the worker that claimed it stopped before recording an outcome (its lease ended); it may have been "
          "delivered, and is tried again")


def _record_lapsed(conn: Connection, lapsed: dict[str, list[tuple[int, str, int]]], now: float) -> None:
    """A claim whose lease ended without an outcome: its worker died, maybe with the message sent and the reply
    unheard. The history says so, as for a reply lost after the final dot, since the next try may duplicate it."""
    rows = [{"message_id": i, "at": now, "type": "unknown", "recipient": email, "text": LAPSED}
            for i, found in lapsed.items() for _, email, _ in found]
    if rows:
        conn.execute(insert(events), rows)


def body(conn: Connection, message_id: str) -> bytes | None:
    return conn.execute(select(bodies.c.data).where(bodies.c.message_id == message_id)).scalar()


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


def sum_up(conn: Connection, message_id: str, now: float, **values: object) -> str:
    """Set the message's status and next due time from its recipients; drop its body once none is pending."""
    rows = conn.execute(select(recipients.c.status, recipients.c.next_attempt_at)
                        .where(recipients.c.message_id == message_id)).all()
    pending = [r.next_attempt_at for r in rows if r.status in PENDING]
    due = min((t if t is not None else now for t in pending), default=None)
    status = summarize(r.status for r in rows)
    conn.execute(update(messages).where(messages.c.id == message_id)
                 .values(status=status, due_at=due, lease_token=None, updated_at=now, **values))
    if due is None:
        conn.execute(delete(bodies).where(bodies.c.message_id == message_id))
    return status


def purge_finished(conn: Connection, before: float) -> int:
    """Forget messages that ended before ``before`` (their recipients and events go with them)."""
    old = select(messages.c.id).where(messages.c.due_at.is_(None), messages.c.updated_at < before)
    for table in (events, recipients, bodies):
        conn.execute(delete(table).where(table.c.message_id.in_(old)))
    return conn.execute(delete(messages).where(messages.c.due_at.is_(None),
                                               messages.c.updated_at < before)).rowcount


def count_due(conn: Connection, now: float) -> int:
    return conn.execute(select(func.count()).select_from(messages).where(messages.c.due_at <= now)).scalar_one()
