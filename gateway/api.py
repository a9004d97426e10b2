"""The HTTP routes: send one message, a batch or a raw message, and a liveness probe."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from backends.rendering import addr_spec, render_raw
from gateway.attachments import decode_base64
from gateway.batch import send_batch
from gateway.extension import MailGateway
from gateway.messages import build_message
from gateway.replay import idempotent
from gateway.request_body import json_body
from gateway.schemas import parse_message_request, parse_raw_request

blueprint = Blueprint("api", __name__)


@blueprint.get("/healthz")
def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@blueprint.post("/v1/messages")
@idempotent
def send_message() -> tuple[dict[str, Any], int]:
    state = MailGateway.state()
    settings = state.settings
    request = parse_message_request(json_body(), default_sender=settings.mail_default_sender,
                                    max_recipients=settings.gateway_max_recipients)
    result = state.send(build_message(request, default_sender=settings.mail_default_sender))
    return result.to_dict(), 202


@blueprint.post("/v1/messages/batch")
@idempotent
def send_message_batch() -> tuple[dict[str, Any], int]:
    return {"results": send_batch(MailGateway.state(), json_body())}, 200


@blueprint.post("/v1/messages/raw")
@idempotent
def send_raw_message() -> tuple[dict[str, Any], int]:
    state = MailGateway.state()
    request = parse_raw_request(json_body(), max_recipients=state.settings.gateway_max_recipients)
    rendered = render_raw(addr_spec(request.mail_from), [addr_spec(r) for r in request.rcpt_to],
                          decode_base64(request.data))
    return state.send_rendered(rendered).to_dict(), 202
