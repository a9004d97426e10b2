"""The JSON bodies of the batch and raw routes (a single message is ``mail_gateway.mail.request``'s
``MessageRequest``), validated by pydantic; the OpenAPI document is generated from these models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mail_gateway.errors import FieldError, InvalidMessageError
from mail_gateway.mail.fields import AddressList, Base64Bytes, ReversePath
from mail_gateway.mail.request import MessageRequest, check_recipient_count, too_many_recipients, validation_errors
from mail_gateway.mail.times import Rfc3339Time


class BatchRequest(BaseModel):
    """Several messages, validated and reported one by one."""

    model_config = ConfigDict(extra="forbid", title="Batch")

    messages: list[MessageRequest] = Field(min_length=1)


class RawMessageRequest(BaseModel):
    """A message the client built itself, sent unchanged apart from a Message-ID/Date added when missing."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="RawMessage")

    mail_from: ReversePath = Field(description="the envelope sender (SMTP MAIL FROM); \"\" for the null sender of a "
                                               "bounce, a DSN or an auto-reply")
    rcpt_to: AddressList = Field(min_length=1, description="the envelope recipients (SMTP RCPT TO)")
    data: Base64Bytes = Field(description="the RFC 5322 message, base64-encoded", json_schema_extra={"minLength": 1})
    send_at: Rfc3339Time | None = Field(None, description="when to send it, RFC 3339 with an offset; needs queued "
                                                            "delivery")


def batch_items(payload: Any, max_batch: int) -> list[Any]:
    """The list under ``messages``, each item still to validate on its own; anything wrong with the envelope
    itself fails the whole request."""
    if not isinstance(payload, dict):
        raise InvalidMessageError(errors=[FieldError("body", "must be an object {\"messages\": [...]}")])
    unknown = sorted(set(payload) - {"messages"})
    if unknown:
        raise InvalidMessageError(errors=[FieldError(name, "unknown field; remove it") for name in unknown])
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidMessageError(errors=[FieldError("messages", "must be a non-empty list of messages")])
    if len(messages) > max_batch:
        raise InvalidMessageError(errors=[FieldError("messages", f"{len(messages)} messages; at most {max_batch} "
                                                     "are allowed per batch (GATEWAY_MAX_BATCH): split it")])
    return messages


def parse_raw_request(payload: Any, *, max_recipients: int) -> RawMessageRequest:
    check_recipient_count(payload, ("rcpt_to",), max_recipients, "rcpt_to")
    try:
        request = RawMessageRequest.model_validate(payload)
    except ValidationError as exc:
        raise InvalidMessageError(errors=validation_errors(exc)) from exc
    errors = too_many_recipients(len(request.rcpt_to), max_recipients, "rcpt_to")
    if not request.data:
        errors.append(FieldError("data", "must not be empty"))
    if errors:
        raise InvalidMessageError(errors=errors)
    return request
