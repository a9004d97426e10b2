"""``/v1/outbox/chaos`` and the page's ``/outbox/chaos``: read and set the chaos switch
(``mail_gateway.sending.chaos``) of the sender this app sends with."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from mail_gateway.errors import FieldError, InvalidMessageError
from mail_gateway.http import docs
from mail_gateway.http.body import json_body
from mail_gateway.http.problems import Problem
from mail_gateway.mail.request import validation_errors
from mail_gateway.outbox import state
from mail_gateway.outbox.tool_models import ChaosBody, ChaosState
from mail_gateway.runtime import Runtime
from mail_gateway.sending.chaos import DEVELOPMENT_BACKENDS, ChaosConfig, ChaosSwitch


def _sees_every_key() -> bool:
    """Whether the request's key sees every key's mail (an admin key, an unnamed one, or no keys at all): the
    switch fails every key's mail, and what it failed names their recipients, so only such a key sets or reads it."""
    return state.viewer().owner is None


def _state() -> dict[str, Any]:
    sender = Runtime.of().sender
    switch: ChaosSwitch = sender.chaos
    backend = sender.backend.name
    return {**switch.config.to_dict(), "backend": backend,
            "available": switch.allowed is None and backend in DEVELOPMENT_BACKENDS,
            "recent": switch.recent() if _sees_every_key() else []}


@docs.operation("The chaos switch: which failures the development backends inject, and the last ones injected",
                operation_id="get_outbox_chaos", tag="outbox", responses={200: ChaosState}, problems=(401,))
def get_chaos() -> dict[str, Any]:
    return _state()


@docs.operation("Set the chaos switch (off in production, and with a backend other than memory, console or file)",
                operation_id="set_outbox_chaos", tag="outbox", body=ChaosBody, responses={200: ChaosState},
                problems=(400, 401, 403, 409, 415, 422))
def set_chaos() -> dict[str, Any]:
    if not _sees_every_key():
        why = "the chaos switch fails every key's mail; set it with an admin key (GATEWAY_ADMIN_KEYS)"
        raise Problem(403, "Chaos switch refused", f"This API key sees its own mail only, and {why}.",
                      "chaos-not-allowed", [FieldError("Authorization", why)])
    try:
        body = ChaosBody.model_validate(json_body())
    except ValidationError as exc:
        raise InvalidMessageError(errors=validation_errors(exc)) from exc
    config = ChaosConfig(enabled=body.enabled, reply=body.reply, percent=body.percent, recipients=body.recipients,
                         delay_ms=body.delay_ms)
    if config.problems():
        raise InvalidMessageError(errors=config.problems())
    sender = Runtime.of().sender
    if config.enabled and sender.chaos.allowed is not None:
        raise Problem(409, "Chaos switch refused", "Failing on purpose is refused in production "
                      "(GATEWAY_ENV=production); try it in development or testing.", "chaos-not-allowed")
    if config.enabled and sender.backend.name not in DEVELOPMENT_BACKENDS:
        raise Problem(409, "Chaos switch refused", f"The chaos switch makes the development backends (memory, "
                      f"console, file) fail, and this gateway sends with {sender.backend.name}; set MAIL_BACKEND "
                      "to one of them to use it.", "chaos-not-allowed")
    sender.chaos.configure(config)
    return _state()
