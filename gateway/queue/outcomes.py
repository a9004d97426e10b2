"""What an attempt's outcome means for each recipient: delivered, bounced, deferred with backoff, or failed.

4xx replies, refused or dropped connections and timeouts defer; 5xx bounces; a recipient still undelivered when
its message's lifetime ends fails. A reply lost after the final dot is deferred and retried — RFC 5321 section
6.1 prefers a duplicate to a loss — and the attempt is recorded as ``unknown``.

An upstream's reply text is recorded as the reason, with the characters a store cannot hold escaped (``\\x00``):
PostgreSQL refuses a NUL in text, and a reason the store refuses would leave the attempt unrecorded.
"""

from __future__ import annotations

from dataclasses import replace

from mail_gateway.backends.backoff import Backoff
from mail_gateway.errors import (
    DeliveryError,
    DeliveryOutcomeUnknownError,
    PermanentDeliveryError,
)
from mail_gateway.mail.result import RecipientResult, SendResult
from mail_gateway.mail.storable import storable
from mail_gateway.store.claims import Attempt, Claimed, RecipientUpdate

SLOW_DOWN_CODES = (421, 451)  # an upstream asking the client to come back later


def _final_or_deferred(claimed: Claimed, position: int, email: str, attempts: int, code: int | None,
                       reason: str | None, now: float, backoff: Backoff, event: str) -> RecipientUpdate:
    if now >= claimed.expires_at:
        why = f"still undelivered when the message's lifetime ended (GATEWAY_QUEUE_LIFETIME); last: {reason or '-'}"
        return RecipientUpdate(position, email, "failed", "failed", code, why)
    retry_at = min(now + backoff.delay(attempts + 1), claimed.expires_at)
    return RecipientUpdate(position, email, "deferred", event, code, reason, retry_at)


def _from_result(claimed: Claimed, result: SendResult, now: float, backoff: Backoff) -> list[RecipientUpdate]:
    by_email: dict[str, RecipientResult] = {r.email: r for r in result.recipients}
    updates = []
    for position, email, attempts in claimed.recipients:
        r = by_email.get(email)
        if r is None or r.status == "accepted":
            code = 250 if result.upstream else None
            updates.append(RecipientUpdate(position, email, "delivered", "delivered", code, r and r.reason))
        elif r.status == "suppressed":  # on the suppression list: left out, for good
            updates.append(RecipientUpdate(position, email, "suppressed", "suppressed", None, r.reason))
        elif r.status == "rejected":
            updates.append(RecipientUpdate(position, email, "bounced", "bounced", r.code, r.reason))
        else:
            updates.append(_final_or_deferred(claimed, position, email, attempts, r.code, r.reason, now, backoff,
                                              "deferred"))
    return updates


def _from_error(claimed: Claimed, error: DeliveryError, now: float, backoff: Backoff) -> list[RecipientUpdate]:
    by_email = {r.email: r for r in error.recipients}
    event = "unknown" if isinstance(error, DeliveryOutcomeUnknownError) else "deferred"
    updates = []
    for position, email, attempts in claimed.recipients:
        r = by_email.get(email)
        if r is not None and r.status == "suppressed":
            updates.append(RecipientUpdate(position, email, "suppressed", "suppressed", None, r.reason))
            continue
        code = r.code if r is not None and r.code is not None else error.smtp_code
        reason = r.reason if r is not None and r.reason else str(error)
        refused = r is not None and r.status == "rejected"
        if refused or (isinstance(error, PermanentDeliveryError) and (r is None or r.status != "deferred")):
            updates.append(RecipientUpdate(position, email, "bounced", "bounced", code, reason))
        else:
            updates.append(_final_or_deferred(claimed, position, email, attempts, code, reason, now, backoff, event))
    return updates


def _storable(update: RecipientUpdate) -> RecipientUpdate:
    reason = update.reason if update.reason is None else storable(update.reason)
    return update if reason is update.reason else replace(update, reason=reason)


def attempt_for(claimed: Claimed, outcome: SendResult | DeliveryError, now: float, backoff: Backoff) -> Attempt:
    if isinstance(outcome, SendResult):
        updates = _from_result(claimed, outcome, now, backoff)
    else:
        updates = _from_error(claimed, outcome, now, backoff)
    return Attempt(claimed, now, outcome.upstream, tuple(_storable(u) for u in updates))


def asks_to_slow_down(outcome: SendResult | DeliveryError) -> bool:
    """The upstream refused the whole transaction with 421 or 451: it wants fewer messages, not another try now."""
    return (isinstance(outcome, DeliveryError) and not isinstance(outcome, PermanentDeliveryError)
            and outcome.smtp_code in SLOW_DOWN_CODES and not outcome.recipients)
