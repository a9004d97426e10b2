"""What operators and clients do to a queued message: make its pending recipients due now, or cancel them."""

from __future__ import annotations

from contextlib import suppress

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from mail_gateway.errors import DeliveryInFlightError, NoSuchQueuedMessageError, NothingPendingError
from mail_gateway.store import hot
from mail_gateway.store.claims import sum_up
from mail_gateway.store.notify import announce
from mail_gateway.store.schema import events, messages, recipients
from mail_gateway.store.status import PENDING
from mail_gateway.store.webhooks import RecipientEvent, add_webhooks


def _pending(conn: Connection, message_id: str, owner: str | None,
             in_flight_at: float | None = None) -> list[tuple[int, str, int]]:
    """The message's pending recipients. With ``in_flight_at`` (now), a message a worker holds under a lease that
    has not ended is refused: the worker may be sending it, and nothing here could stop that."""
    # The message's row is locked first, as recording an attempt locks it, so that on a server database the two
    # take their locks in one order and wait for each other rather than deadlock.
    found = conn.execute(hot.LOCK_CLAIM, {"b_message": message_id}).first()
    # Another owner's message is as absent as an unknown id, before anything says whether it has pending
    # recipients.
    if found is None or (owner is not None and found.owner != owner):
        raise NoSuchQueuedMessageError(f"no queued message has the id {message_id!r}")
    pending = [(r.position, r.email, r.attempts) for r in conn.execute(
        select(recipients.c.position, recipients.c.email, recipients.c.attempts)
        .where(recipients.c.message_id == message_id, recipients.c.status.in_(PENDING)))]
    # While leased, due_at is the lease's end; a lease that ended belongs to a worker that died or stalled.
    if pending and in_flight_at is not None and found.lease_token is not None and found.due_at > in_flight_at:
        raise DeliveryInFlightError(f"message {message_id} is being delivered right now; ask again once the "
                                    "attempt is recorded (it is then delivered, or pending and can be canceled)")
    return pending


def retry_now(conn: Connection, message_id: str, now: float, owner: str | None = None) -> int:
    """Make every pending recipient due now; how many there were. A message a worker holds right now is left
    to it: it is being tried already. ``owner``: only its message (``messages.owned_by``)."""
    pending = _pending(conn, message_id, owner)
    if not pending:
        raise NothingPendingError(f"message {message_id} has no pending recipient to retry")
    conn.execute(update(recipients).where(recipients.c.message_id == message_id, recipients.c.status.in_(PENDING))
                 .values(next_attempt_at=now))
    conn.execute(update(messages).where(messages.c.id == message_id, messages.c.lease_token.is_(None))
                 .values(due_at=now))
    conn.execute(insert(events).values(message_id=message_id, at=now, type="retry", text="retry requested"))
    announce(conn)
    return len(pending)


def cancel(conn: Connection, message_id: str, now: float, webhook_url: str | None, owner: str | None = None) -> int:
    """Cancel every pending recipient; how many there were. A message a worker holds is refused
    (``DeliveryInFlightError``): a cancel is never reported for a message that is then sent. ``owner``: only its
    message (``messages.owned_by``)."""
    pending = _pending(conn, message_id, owner, in_flight_at=now)
    if not pending:
        raise NothingPendingError(f"message {message_id} has no pending recipient to cancel")
    conn.execute(update(recipients).where(recipients.c.message_id == message_id, recipients.c.status.in_(PENDING))
                 .values(status="canceled", next_attempt_at=None, updated_at=now))
    conn.execute(insert(events), [{"message_id": message_id, "at": now, "type": "canceled", "recipient": email}
                                  for _, email, _ in pending])
    sum_up(conn, message_id, now)
    if webhook_url is not None:
        header_id, sent_by, tags, metadata = conn.execute(
            select(messages.c.message_id, messages.c.owner, messages.c.tags, messages.c.metadata)
            .where(messages.c.id == message_id)).one()
        add_webhooks(conn, webhook_url, [RecipientEvent(message_id, header_id, email, "canceled", None, None, attempts,
                                                        sent_by, tags, metadata) for _, email, attempts in pending],
                     now)
    return len(pending)


def retry_all(conn: Connection, now: float) -> int:
    """Make every pending message due now (``mail-gateway queue retry --all``); how many."""
    ids = list(conn.execute(select(messages.c.id).where(messages.c.due_at.is_not(None),
                                                        messages.c.lease_token.is_(None))).scalars())
    retried = 0
    for message_id in ids:
        # On a server database another process may end a listed message before it is reached here (delivered,
        # canceled): it is passed over, not made to fail the retry of all the others.
        with suppress(NothingPendingError):
            retry_now(conn, message_id, now)
            retried += 1
    return retried
