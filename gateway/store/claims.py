"""Workers' side of the queue: claim due messages under a lease, renew or release it, record each attempt.

A claim moves the message's ``due_at`` to the end of the lease and stamps it with a token. A worker that dies
simply stops renewing: when the lease ends the message is due again and another worker claims it. An outcome is
applied only under the token that claimed it, so a worker that outlived its lease cannot overwrite a newer claim.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from mail_gateway.store.notify import announce
from mail_gateway.store.schema import bodies, events, messages, recipients
from mail_gateway.store.status import PENDING, summarize
from mail_gateway.store.webhooks import RecipientEvent, add_webhooks


@dataclass(frozen=True)
class Claimed:
    id: str
    message_id: str
    envelope_from: str
    created_at: float
    expires_at: float
    token: str
    recipients: tuple[tuple[int, str, int], ...]  # position, email, attempts so far, of each pending recipient


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


def claim(conn: Connection, *, now: float, limit: int, lease: float) -> list[Claimed]:
    """Up to ``limit`` due messages, oldest due first, leased for ``lease`` seconds. On a server database
    ``SKIP LOCKED`` lets concurrent claimers pass over each other's rows; SQLite's one writer needs none."""
    due = (select(messages.c.id, messages.c.lease_token).where(messages.c.due_at <= now)
           .order_by(messages.c.due_at).limit(limit).with_for_update(skip_locked=True))
    found_due = conn.execute(due).all()
    if not found_due:
        return []
    ids = [row.id for row in found_due]
    token = secrets.token_hex(8)
    conn.execute(update(messages).where(messages.c.id.in_(ids)).values(due_at=now + lease, lease_token=token))
    pending: dict[str, list[tuple[int, str, int]]] = {i: [] for i in ids}
    for row in conn.execute(select(recipients.c.message_id, recipients.c.position, recipients.c.email,
                                   recipients.c.attempts)
                            .where(recipients.c.message_id.in_(ids), recipients.c.status.in_(PENDING))
                            .order_by(recipients.c.message_id, recipients.c.position)):
        pending[row.message_id].append((row.position, row.email, row.attempts))
    _lost_attempts(conn, [row.id for row in found_due if row.lease_token is not None], pending, now)
    rows = conn.execute(select(messages.c.id, messages.c.message_id, messages.c.envelope_from,
                               messages.c.created_at, messages.c.expires_at).where(messages.c.id.in_(ids)))
    found = {r.id: r for r in rows}
    return [Claimed(i, found[i].message_id, found[i].envelope_from, found[i].created_at, found[i].expires_at, token,
                    tuple(pending[i])) for i in ids]


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
    if claimed:
        announce(conn)


def record(conn: Connection, attempt: Attempt, webhook_url: str | None) -> bool:
    """Apply an attempt's outcome to each recipient still pending, log it, and sum up the message. False when
    the claim was stale (the attempt is only logged)."""
    m = attempt.message
    conn.execute(insert(events), [{"message_id": m.id, "at": attempt.at, "type": u.event, "recipient": u.email,
                                   "upstream": attempt.upstream, "code": u.code, "text": u.reason}
                                  for u in attempt.updates])
    # Locked, so that a claim being taken concurrently by another worker (its lease over) is decided first.
    current = conn.execute(select(messages.c.lease_token).where(messages.c.id == m.id).with_for_update()).scalar()
    if current != m.token:
        return False
    applied = []
    for u in attempt.updates:
        done = conn.execute(update(recipients).where(
            recipients.c.message_id == m.id, recipients.c.position == u.position, recipients.c.status.in_(PENDING))
            .values(status=u.status, attempts=recipients.c.attempts + 1, code=u.code, reason=u.reason,
                    next_attempt_at=u.next_attempt_at, updated_at=attempt.at))
        if done.rowcount:
            applied.append(u)
    last = attempt.updates[-1] if attempt.updates else None
    sum_up(conn, m.id, attempt.at, attempts=messages.c.attempts + 1, last_code=last and last.code,
           last_reason=last and last.reason)
    if webhook_url is not None:
        add_webhooks(conn, webhook_url, [RecipientEvent(m.id, m.message_id, u.email, u.status, u.code, u.reason,
                                                        _attempts(m, u.position)) for u in applied], attempt.at)
    return True


def _attempts(claimed: Claimed, position: int) -> int:
    return next((a for p, _, a in claimed.recipients if p == position), 0) + 1


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


def next_due(conn: Connection) -> float | None:
    """When the next message is due (perhaps already), or None when nothing is pending."""
    return conn.execute(select(func.min(messages.c.due_at))).scalar()


def count_due(conn: Connection, now: float) -> int:
    return conn.execute(select(func.count()).select_from(messages).where(messages.c.due_at <= now)).scalar_one()
