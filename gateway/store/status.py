"""The closed vocabulary of delivery states, and how a message's status sums up its recipients'.

A recipient is ``queued`` (due now), ``scheduled`` (due at its ``send_at``), ``deferred`` (tried, tried again
later) — the pending states — or finally ``delivered``, ``bounced`` (refused with 5xx), ``failed`` (still
undelivered when its lifetime ended), ``canceled`` or ``suppressed`` (on the suppression list, never sent to).
"""

from __future__ import annotations

from collections.abc import Iterable

PENDING = ("queued", "scheduled", "deferred")
FINAL = ("delivered", "bounced", "failed", "canceled", "suppressed")
STATES = PENDING + FINAL
MESSAGE_STATES = (*STATES, "partial")
# Where final states differ and none was delivered, the most telling one names the message.
_FINAL_ORDER = ("bounced", "failed", "canceled", "suppressed")


def summarize(states: Iterable[str]) -> str:
    """A pending state while any recipient is pending (``deferred`` once one was tried, else ``queued``, else
    ``scheduled``); ``delivered`` when all were; ``partial`` when all are final and some were delivered; otherwise
    their common final state (bounced before failed before canceled when they differ)."""
    found = set(states)
    for state in PENDING[::-1]:
        if state in found:
            return "deferred" if state == "deferred" else ("queued" if "queued" in found else "scheduled")
    if found == {"delivered"}:
        return "delivered"
    if "delivered" in found:
        return "partial"
    return next((state for state in _FINAL_ORDER if state in found), "failed")


def due_at(recipients: Iterable[tuple[str, float | None]], now: float) -> float | None:
    """When a message is next due, from its recipients' (state, next attempt time): the earliest pending one's
    (``now`` for one without a time), or None once none is pending."""
    return min((at if at is not None else now for state, at in recipients if state in PENDING), default=None)


def shown(state: str, next_attempt_at: float | None, now: float) -> str:
    """A scheduled recipient whose time has come is shown as queued until a worker takes it."""
    if state == "scheduled" and next_attempt_at is not None and next_attempt_at <= now:
        return "queued"
    return state
