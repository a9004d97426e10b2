"""Record delivery attempts: many at once, in a fixed number of statements whatever their number.

A worker delivering hundreds of messages a second records as many outcomes. One by one, each cost seven
statements built afresh (SQLAlchemy spends more on building and looking up a statement than SQLite on running
it), and recording took most of a worker's CPU. Here the statements are built once, with bound parameters, and
each runs once per batch of attempts (``executemany`` where rows differ).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Connection

from mail_gateway.store import hot
from mail_gateway.store.claims import Attempt, sum_up
from mail_gateway.store.status import PENDING, due_at, summarize
from mail_gateway.store.webhooks import RecipientEvent, add_webhooks


def record_all(conn: Connection, attempts: Sequence[Attempt], webhook_url: str | None) -> int:
    """Log every attempt; apply each one still holding its claim to its recipients still pending, and sum up
    its message (status, next due time, its body dropped once none is pending). How many were applied: an
    attempt whose claim went stale (its lease ended and another worker claimed the message) is only logged."""
    if not attempts:
        return 0
    logged = [{"message_id": a.message.id, "at": a.at, "type": u.event, "recipient": u.email,
               "upstream": a.upstream, "code": u.code, "text": u.reason} for a in attempts for u in a.updates]
    if logged:
        conn.execute(hot.ADD_EVENTS, logged)
    # Locked: a claim being taken at the same time by another worker (this one's lease over) is decided first.
    tokens = dict(conn.execute(hot.LOCK_CLAIMS, {"b_ids": [a.message.id for a in attempts]}).all())
    current = [a for a in attempts if tokens.get(a.message.id) == a.message.token]
    if len(current) < len(attempts):
        _delivered_after_cancel(conn, [a for a in attempts if tokens.get(a.message.id) != a.message.token],
                                webhook_url)
    if not current:
        return 0
    ids = [a.message.id for a in current]
    found: dict[str, list[Any]] = defaultdict(list)
    for row in conn.execute(hot.RECIPIENTS_OF, {"b_ids": ids}):
        found[row.message_id].append(row)
    pending = {(m, r.position) for m, rows in found.items() for r in rows if r.status in PENDING}
    applied = [(a, u) for a in current for u in a.updates if (a.message.id, u.position) in pending]
    if applied:
        conn.execute(hot.RECIPIENT_OUTCOME, [{"b_message": a.message.id, "b_position": u.position, "b_status": u.status,
                                              "b_code": u.code, "b_reason": u.reason, "b_next": u.next_attempt_at,
                                              "b_at": a.at} for a, u in applied])
    changed = {(a.message.id, u.position): u for a, u in applied}
    sums, finished = [], []
    for a in current:
        states = [(changed[(a.message.id, r.position)].status, changed[(a.message.id, r.position)].next_attempt_at)
                  if (a.message.id, r.position) in changed else (r.status, r.next_attempt_at)
                  for r in found[a.message.id]]
        due = due_at(states, a.at)
        last = a.updates[-1] if a.updates else None
        sums.append({"b_message": a.message.id, "b_status": summarize(s for s, _ in states), "b_due": due,
                     "b_at": a.at, "b_code": last and last.code, "b_reason": last and last.reason})
        if due is None:
            finished.append(a.message.id)
    conn.execute(hot.ATTEMPT_SUMMED_UP, sums)
    if finished:
        conn.execute(hot.DROP_BODIES, {"b_ids": finished})
    if webhook_url is not None:
        _webhooks(conn, webhook_url, applied)
    return len(current)


def _delivered_after_cancel(conn: Connection, stale: list[Attempt], webhook_url: str | None) -> None:
    """A cancel goes through once the lease of the worker holding the message has ended, that worker presumed
    dead. One that had only stalled may then report the message delivered: its recipients canceled meanwhile are
    recorded delivered (with their webhooks), since the status must not say canceled for mail that went out. Other
    stale outcomes stay only logged: a pending recipient is another claim's to decide, and one refused or never
    tried is rightly canceled."""
    delivered = [(a, u) for a in stale for u in a.updates if u.status == "delivered"]
    applied = [(a, u) for a, u in delivered if conn.execute(hot.DELIVERED_AFTER_CANCEL, {
        "b_message": a.message.id, "b_position": u.position, "b_code": u.code, "b_reason": u.reason,
        "b_at": a.at}).rowcount]
    for message_id in {a.message.id: None for a, _ in applied}:
        sum_up(conn, message_id, max(a.at for a, _ in applied if a.message.id == message_id))
    if applied and webhook_url is not None:
        _webhooks(conn, webhook_url, applied)


def _webhooks(conn: Connection, url: str, applied: list[tuple[Attempt, Any]]) -> None:
    by_attempt: dict[int, list[RecipientEvent]] = defaultdict(list)
    for a, u in applied:
        attempts = next((n for p, _, n in a.message.recipients if p == u.position), 0) + 1
        by_attempt[id(a)].append(RecipientEvent(a.message.id, a.message.message_id, u.email, u.status, u.code,
                                                u.reason, attempts, a.message.owner, a.message.tags,
                                                a.message.metadata))
    for a in {id(a): a for a, _ in applied}.values():
        add_webhooks(conn, url, by_attempt[id(a)], a.at)
