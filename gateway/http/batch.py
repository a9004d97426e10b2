"""``POST /v1/messages/batch``: validate each message on its own, then hand the valid ones to the backend at once."""

from __future__ import annotations

from typing import Any

from mail_gateway.errors import DeliveryError, InvalidMessageError
from mail_gateway.http.problems import problem_for
from mail_gateway.http.schemas import batch_items
from mail_gateway.mail.compose import compose
from mail_gateway.mail.rendering import RenderedMessage
from mail_gateway.sending import Sender
from mail_gateway.settings.senders import Client


def _failed(index: int, error: InvalidMessageError | DeliveryError) -> dict[str, Any]:
    return {"index": index, "status": "failed", "error": problem_for(error).body()}


def send_batch(sender: Sender, payload: Any, client: Client) -> list[dict[str, Any]]:
    """One result per message, in request order; one bad message never stops the others."""
    items = batch_items(payload, sender.settings.gateway_max_batch)
    results: list[dict[str, Any] | None] = [None] * len(items)
    rendered: list[RenderedMessage] = []
    positions: list[int] = []
    for index, item in enumerate(items):
        try:
            rendered.append(compose(sender.parse(item)))
            positions.append(index)
        except InvalidMessageError as exc:
            results[index] = _failed(index, exc)
    # In one call, so a backend with connections sends the whole batch over the same one(s).
    for index, outcome in zip(positions, sender.deliver(rendered, via="http", client=client), strict=True):
        if isinstance(outcome, DeliveryError):
            results[index] = _failed(index, outcome)
        else:
            results[index] = {"index": index, "status": "accepted", **outcome.to_dict()}
    return [result for result in results if result is not None]
