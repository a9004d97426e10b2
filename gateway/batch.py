"""``POST /v1/messages/batch``: validate each message on its own, then hand the valid ones to the backend at once."""

from __future__ import annotations

from typing import Any

from backends.errors import DeliveryError, InvalidMessageError
from backends.rendering import RenderedMessage, render_message
from gateway.extension import GatewayState
from gateway.messages import build_message
from gateway.problems import FieldError, InvalidRequest, Problem, problem_for
from gateway.schemas import parse_message_request


def batch_messages(payload: Any, max_batch: int) -> list[Any]:
    """The list under ``messages``; anything wrong with the envelope itself fails the whole request."""
    if not isinstance(payload, dict):
        raise InvalidRequest([FieldError("body", "must be an object {\"messages\": [...]}")])
    unknown = sorted(set(payload) - {"messages"})
    if unknown:
        raise InvalidRequest([FieldError(name, "unknown field; remove it") for name in unknown])
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest([FieldError("messages", "must be a non-empty list of messages")])
    if len(messages) > max_batch:
        raise InvalidRequest([FieldError("messages", f"{len(messages)} messages; at most {max_batch} are "
                                                     "allowed per batch (GATEWAY_MAX_BATCH): split it")])
    return messages


def _failed(index: int, problem: Problem) -> dict[str, Any]:
    return {"index": index, "status": "failed", "error": problem.body()}


def send_batch(state: GatewayState, payload: Any) -> list[dict[str, Any]]:
    """One result per message, in request order; one bad message never stops the others."""
    settings = state.settings
    messages = batch_messages(payload, settings.gateway_max_batch)
    results: list[dict[str, Any] | None] = [None] * len(messages)
    rendered: list[RenderedMessage] = []
    positions: list[int] = []
    for index, item in enumerate(messages):
        try:
            request = parse_message_request(item, default_sender=settings.mail_default_sender,
                                            max_recipients=settings.gateway_max_recipients)
            rendered.append(render_message(build_message(request, default_sender=settings.mail_default_sender)))
            positions.append(index)
        except InvalidRequest as problem:
            results[index] = _failed(index, problem)
        except InvalidMessageError as exc:
            results[index] = _failed(index, problem_for(exc))
    # Once, so a backend with connections sends the whole batch over the same one(s).
    for index, outcome in zip(positions, state.send_batch(rendered), strict=True):
        if isinstance(outcome, DeliveryError):
            results[index] = _failed(index, problem_for(outcome))
        else:
            results[index] = {"index": index, "status": "accepted", **outcome.to_dict()}
    return [result for result in results if result is not None]
