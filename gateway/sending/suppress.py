"""The suppression list as the send path sees it: who of a message's recipients is left out, and what the
outcome says of them.

A suppressed recipient never reaches the backend: the message goes to the others, and the outcome names each
suppressed one as ``suppressed``. A message all of whose recipients are suppressed is sent to no one
(``RecipientsSuppressedError``). The list itself lives in the store (``mail_gateway.suppression``), which this
floor may not import: the sender is handed one (``SuppressionList``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from mail_gateway.backends.base import EmailBackend
from mail_gateway.errors import DeliveryError, RecipientsSuppressedError
from mail_gateway.mail.rendering import RenderedMessage
from mail_gateway.mail.result import QueuedResult, RecipientResult, SendResult
from mail_gateway.sending.log import Outcome

OnOutcome = Callable[[int, Outcome], None]
SUPPRESSED_FIX = ("every recipient is on the suppression list, so the message was sent to no one; remove an "
                  "address (DELETE /v1/suppressions/{address} or `mail-gateway suppressions remove`) to send to it")


class SuppressionList(Protocol):
    def suppressed(self, addresses: Sequence[str]) -> set[str]:
        """Those of ``addresses``, as given, on the list now; ``StoreUnavailableError`` when it cannot be read."""

    def learn(self, outcome: Outcome, message_id: str | None) -> None:
        """Add the recipients ``outcome`` shows have no mailbox (a permanent refusal such as 550 5.1.1)."""


@dataclass(frozen=True)
class ReadWithClaim:
    """The list as a worker's claim read it, in the transaction that claimed the message: a read transaction per
    message cost as much CPU as the rest of its delivery. A mailbox added after the claim is left out from the
    next claim on; a delivery already in hand goes ahead, as one already in flight does."""

    on_list: frozenset[str]
    learner: SuppressionList

    def suppressed(self, addresses: Sequence[str]) -> set[str]:
        return {address for address in addresses if address in self.on_list}

    def learn(self, outcome: Outcome, message_id: str | None) -> None:
        self.learner.learn(outcome, message_id)


def read_with_claim(suppressions: SuppressionList | None, on_list: frozenset[str] | None) -> SuppressionList | None:
    return suppressions if suppressions is None or on_list is None else ReadWithClaim(on_list, suppressions)


def skipped(recipients: Sequence[str], suppressed: set[str]) -> tuple[RecipientResult, ...]:
    return tuple(RecipientResult(r, "suppressed", reason="on the suppression list") for r in recipients
                 if r in suppressed)


def remaining(message: RenderedMessage, suppressed: set[str], backend: str) -> RenderedMessage | DeliveryError:
    """The message for its recipients not suppressed, or the refusal when none is left."""
    if not suppressed:
        return message
    kept = tuple(r for r in message.recipients if r not in suppressed)
    if kept:
        return replace(message, recipients=kept)
    return RecipientsSuppressedError(SUPPRESSED_FIX, backend=backend, message_id=message.message_id,
                                     recipients=skipped(message.recipients, suppressed))


def with_skipped(outcome: Outcome, message: RenderedMessage, suppressed: set[str]) -> Outcome:
    """``outcome`` of the recipients sent to, with the suppressed ones added (once: a relayed outcome is the
    same object as the one returned)."""
    if not suppressed or any(r.status == "suppressed" for r in outcome.recipients):
        return outcome
    left_out = skipped(message.recipients, suppressed)
    if isinstance(outcome, SendResult):
        return replace(outcome, recipients=(*outcome.recipients, *left_out))
    outcome.recipients = (*outcome.recipients, *left_out)
    return outcome


def _to_backend(backend: EmailBackend, messages: list[RenderedMessage], on_outcome: OnOutcome | None) -> list[Outcome]:
    if on_outcome is None:
        return backend.deliver_all(messages)
    return backend.deliver_all(messages, on_outcome=on_outcome)


def deliver_unsuppressed(messages: Sequence[RenderedMessage], suppressions: SuppressionList | None,
                         backend: EmailBackend, on_outcome: OnOutcome | None, gateway_id: object) -> list[Outcome]:
    """Each message's outcome, in order: delivered by ``backend`` to its recipients not suppressed, each
    suppressed one named in it; the list then learns of the mailboxes the upstream said do not exist.
    ``gateway_id``: the queued message's id (a worker's delivery), recorded as the cause of what it learns."""
    if suppressions is None:
        return _to_backend(backend, list(messages), on_outcome)
    left_out = [suppressions.suppressed(m.recipients) for m in messages]
    plan = [remaining(m, s, backend.name) for m, s in zip(messages, left_out, strict=True)]
    sendable = [i for i, p in enumerate(plan) if isinstance(p, RenderedMessage)]
    outcomes: list[Outcome] = [p if isinstance(p, DeliveryError) else SendResult(messages[i].message_id, backend.name)
                for i, p in enumerate(plan)]
    for i, refusal in enumerate(plan):
        if isinstance(refusal, DeliveryError) and on_outcome is not None:
            on_outcome(i, refusal)

    def merged(j: int, outcome: Outcome) -> Outcome:
        i = sendable[j]
        return with_skipped(outcome, messages[i], left_out[i])

    relay = None if on_outcome is None else (lambda j, outcome: on_outcome(sendable[j], merged(j, outcome)))
    sent = _to_backend(backend, [m for m in plan if isinstance(m, RenderedMessage)], relay) if sendable else []
    for j, outcome in enumerate(sent):
        outcomes[sendable[j]] = merged(j, outcome)
    message_id = gateway_id if isinstance(gateway_id, str) else None
    for outcome in outcomes:
        suppressions.learn(outcome, message_id)
    return outcomes


def stored(messages: Sequence[RenderedMessage], queued: Sequence[QueuedResult],
           backend: str) -> list[QueuedResult | DeliveryError]:
    """What the spool made of queued messages (``Spool.put``, which reads the list in the transaction that stores
    them): each one's result, or the refusal of one stored for no one, every recipient being suppressed."""
    return [result if result.recipients else remaining(message, set(result.suppressed), backend)
            for message, result in zip(messages, queued, strict=True)]


def placed(outcomes: list[Any], at: Sequence[int], results: Sequence[Any]) -> list[Any]:
    """``outcomes`` with ``results[j]`` put at ``at[j]``: the outcomes of the messages the pipeline passed."""
    for i, result in zip(at, results, strict=True):
        outcomes[i] = result
    return outcomes
