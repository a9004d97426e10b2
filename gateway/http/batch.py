"""``POST /v1/messages/batch``: validate each message on its own, then hand the valid ones to the sender's one send
path at once (``Sender.send_all``: the backend in one call or, with queued delivery, the store in one
transaction)."""

from __future__ import annotations

from typing import Any

from mail_gateway.errors import DeliveryError, InvalidMessageError
from mail_gateway.http.keyring import KeyedRequest
from mail_gateway.http.problems import problem_for
from mail_gateway.http.schemas import batch_items
from mail_gateway.mail.request import MessageRequest
from mail_gateway.mail.result import QueuedResult, SendResult
from mail_gateway.sending import Outcome, Sender
from mail_gateway.settings.senders import Client


def _failed(error: InvalidMessageError | DeliveryError) -> dict[str, Any]:
    return {"status": "failed", "error": problem_for(error).body()}


def _item(outcome: SendResult | QueuedResult | DeliveryError) -> dict[str, Any]:
    if isinstance(outcome, DeliveryError):
        return _failed(outcome)
    if isinstance(outcome, QueuedResult):
        return outcome.to_dict()
    return {"status": "accepted", **outcome.to_dict()}


def send_batch(sender: Sender, payload: Any, client: Client, keyed: KeyedRequest | None = None) -> list[dict[str, Any]]:
    """One result per message, in request order; one bad message never stops the others. For a keyed request
    (``keyed``) each direct outcome is recorded under its key as it happens, so a crash mid-batch still leaves an
    answer; queued, its messages are stored in the transaction that records its response."""
    items = batch_items(payload, sender.settings.gateway_max_batch)
    results: dict[int, dict[str, Any]] = {}
    requests: list[MessageRequest] = []
    positions: list[int] = []
    for index, item in enumerate(items):
        try:
            requests.append(sender.parse(item))
            positions.append(index)
        except InvalidMessageError as exc:
            results[index] = _failed(exc)
    on_outcome = None
    if keyed is not None and sender.spool is None:
        for index, result in results.items():
            keyed.record(index, result)

        def on_outcome(i: int, outcome: Outcome) -> None:
            keyed.record(positions[i], _item(outcome))

    # The valid ones together, through the sender's one send path.
    outcomes = sender.send_all(requests, via="http", client=client, on_outcome=on_outcome, transaction=keyed)
    for index, outcome in zip(positions, outcomes, strict=True):
        results[index] = _item(outcome)
    return [{"index": index, **results[index]} for index in range(len(items))]
