"""The HTTP routes: send one message, a batch or a raw message, and a liveness probe."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from mail_gateway.errors import RecipientsRefusedError
from mail_gateway.http import docs
from mail_gateway.http.auth import current_client
from mail_gateway.http.batch import send_batch
from mail_gateway.http.body import json_body, release_json_body
from mail_gateway.http.idempotency import idempotent
from mail_gateway.http.keyring import KeyedRequest
from mail_gateway.http.responses import BatchResult, Health, QueuedResponse, SendResponse
from mail_gateway.http.schemas import BatchRequest, RawMessageRequest, parse_raw_request
from mail_gateway.mail.recipient_fields import named
from mail_gateway.mail.request import MessageRequest
from mail_gateway.runtime import Runtime

blueprint = Blueprint("api", __name__)
SENT = (SendResponse, QueuedResponse)  # delivered now (direct) or stored for the workers (queued)


@blueprint.get("/healthz")
@docs.operation("Liveness probe", operation_id="get_health", tag="health", responses={200: Health})
def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@blueprint.post("/v1/messages")
@docs.operation("Send one message", operation_id="send_message", tag="messages", body=MessageRequest,
                responses={202: SENT}, problems=docs.SEND_ERRORS, idempotent=True)
@idempotent
def send_message(keyed: KeyedRequest | None = None) -> tuple[dict[str, Any], int]:
    sender = Runtime.of().sender
    message = sender.parse(json_body())
    release_json_body()  # an attachment's base64 text is decoded now: not held while the message is built
    result = sender.send(message, via="http", client=current_client(), transaction=keyed)
    return result.to_dict(), 202


@blueprint.post("/v1/messages/batch")
@docs.operation("Send several messages, each reported on its own", operation_id="send_batch", tag="messages",
                body=BatchRequest,
                responses={200: BatchResult}, problems=docs.BATCH_ERRORS, idempotent=True)
@idempotent
def send_message_batch(keyed: KeyedRequest | None = None) -> tuple[dict[str, Any], int]:
    return {"results": send_batch(Runtime.of().sender, json_body(), current_client(), keyed)}, 200


@blueprint.post("/v1/messages/raw")
@docs.operation("Send a message built by the client, unchanged", operation_id="send_raw", tag="messages",
                body=RawMessageRequest,
                responses={202: SENT}, problems=docs.SEND_ERRORS, idempotent=True)
@idempotent
def send_raw_message(keyed: KeyedRequest | None = None) -> tuple[dict[str, Any], int]:
    sender = Runtime.of().sender
    request = parse_raw_request(json_body(), max_recipients=sender.settings.gateway_max_recipients)
    release_json_body()  # its base64 text is decoded now
    try:
        result = sender.send_raw(request.mail_from, [r.envelope for r in request.rcpt_to], request.data,
                                 via="http", client=current_client(), send_at=sender.send_time(request.send_at),
                                 transaction=keyed)
    except RecipientsRefusedError as refused:
        named(refused, [("rcpt_to", request.rcpt_to)])
        raise
    return result.to_dict(), 202
