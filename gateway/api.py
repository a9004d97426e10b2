"""The HTTP routes: send one message, and a liveness probe."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from gateway.extension import MailGateway
from gateway.messages import build_message
from gateway.request_body import json_body
from gateway.schemas import parse_message_request

blueprint = Blueprint("api", __name__)


@blueprint.get("/healthz")
def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@blueprint.post("/v1/messages")
def send_message() -> tuple[dict[str, Any], int]:
    state = MailGateway.state()
    default_sender = state.settings.mail_default_sender
    request = parse_message_request(json_body(), default_sender=default_sender)
    result = state.send(build_message(request, default_sender=default_sender))
    return result.to_dict(), 202
