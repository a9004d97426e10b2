"""The events the gateway POSTs to webhooks, as the ``webhooks`` of ``/openapi.json``.

The payloads are built as plain dicts where each event happens: a recipient's delivery outcome in
``mail_gateway.store.webhooks``, an event reported later (a bounce report, an auto-reply, an unsubscribe) in
``mail_gateway.suppression.events``, inbound mail in ``mail_gateway.ingress.inbound``. These models describe them;
the tests validate real payloads against them, strictly and with no field left over either side, so the two
cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeAliasType

from mail_gateway.queue.models import MessageMetadata

DeliveryOutcome = TypeAliasType(
    "DeliveryOutcome", Literal["delivered", "deferred", "bounced", "failed", "canceled", "suppressed"])
DeliveryEventType = TypeAliasType("DeliveryEventType", Literal[
    "message.delivered", "message.deferred", "message.bounced", "message.failed", "message.canceled",
    "message.suppressed"])
ReportedOutcome = TypeAliasType(
    "ReportedOutcome", Literal["delivered", "bounced", "delayed", "autoresponded", "unknown", "unsubscribed"])
ReportedEventType = TypeAliasType("ReportedEventType", Literal[
    "message.delivered", "message.bounced", "message.delayed", "message.autoresponded", "message.unknown",
    "message.unsubscribed"])
RejectReason = TypeAliasType(
    "RejectReason", Literal["invalid", "bounced", "timed_out", "blocked", "spam", "unsubscribed", "other"])
SpamHeaders = TypeAliasType("SpamHeaders", dict[str, str])


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Labelled(_Payload):
    """What an event of a message sent carries of that message (empty for an event of no stored message)."""

    tags: list[str] = Field(description="The message's tags (X-Tags)")
    metadata: MessageMetadata = Field(description="The message's metadata (X-Metadata-*)")


class DeliveryEventData(_Labelled):
    id: str = Field(description="The queued message's id (GET /v1/messages/{id})")
    message_id: str = Field(description="The Message-ID header the message carries")
    recipient: str
    code: int | None = Field(description="The upstream's SMTP reply code, where it answered")
    reason: str | None = Field(description="The upstream's reply text, or why the recipient was left out")
    attempts: int = Field(description="Delivery attempts made to this recipient")
    api_key: str | None = Field(description="The name of the API key that sent the message (null for an unnamed "
                                            "key or none)")
    event_type: DeliveryOutcome
    event_id: str = Field(description="The same as the webhook-id header: de-duplicate on it")
    reject_reason: RejectReason | None = Field(description="bounced, or timed_out for failed; else null")
    mta_response: str | None = Field(description="code and reason as one line, where the upstream answered")


class DeliveryEvent(_Payload):
    """A recipient's delivery outcome: one event per recipient and outcome, sent to GATEWAY_WEBHOOK_URL."""

    type: DeliveryEventType
    timestamp: datetime
    data: DeliveryEventData


class ReportedEventData(_Labelled):
    event_type: ReportedOutcome
    event_id: str
    id: str | None = Field(description="The queued message's id; null for a direct message or an unsubscribe")
    recipient: str | None = Field(description="null for an auto-reply or other mail, which names no recipient")
    reject_reason: RejectReason | None
    mta_response: str | None = Field(description="A bounce report's Diagnostic-Code")
    detail: str | None = Field(description="A bounce report's Status, or the subject of an auto-reply or other mail")
    timestamp: datetime


class ReportedEvent(_Payload):
    """An event reported after delivery, sent to GATEWAY_WEBHOOK_URL: a bounce report (DSN) or other mail to the
    bounce address, or a recipient unsubscribing."""

    type: ReportedEventType
    timestamp: datetime
    data: ReportedEventData


class InboundEnvelope(_Payload):
    mail_from: str
    rcpt_to: list[str]


class InboundAttachment(_Payload):
    filename: str | None
    content_type: str
    size: int = Field(description="In bytes, decoded")
    content_id: str | None
    inline: bool
    content: str = Field(description="The file, base64", json_schema_extra={"contentEncoding": "base64"})


class InboundEventData(_Payload):
    event_type: Literal["inbound"]
    event_id: str
    id: str = Field(description="The inbound message's id")
    recipient: str = Field(description="The first envelope recipient of this route")
    reject_reason: None
    mta_response: None
    detail: None
    timestamp: datetime
    raw_url: str = Field(description="Where to GET the message as received (message/rfc822)")
    envelope: InboundEnvelope
    message_id: str = Field(description="The Message-ID header; empty when there is none")
    from_: str = Field(alias="from", description="The From header; empty when there is none")
    to: list[str]
    cc: list[str]
    subject: str
    text: str | None
    html: str | None
    headers: list[tuple[str, str]] = Field(description="Every header field, in order, as [name, value]")
    spam: SpamHeaders = Field(description="The spam filters' header fields (X-Spam-*, Authentication-Results, ...)")
    attachments: list[InboundAttachment]


class InboundEvent(_Payload):
    """Mail the SMTP ingress received for an inbound route (GATEWAY_INBOUND_ROUTES), sent to the route's URL."""

    type: Literal["message.inbound"]
    timestamp: datetime
    data: InboundEventData


MODELS: tuple[type[BaseModel], ...] = (DeliveryEvent, ReportedEvent, InboundEvent)
# Each webhook, named by its payload's ``type``: when it is sent, and the payloads it may carry.
WEBHOOKS: dict[str, tuple[str, tuple[type[BaseModel], ...]]] = {
    "message.delivered": ("The upstream accepted a recipient, or a bounce report says it was delivered",
                          (DeliveryEvent, ReportedEvent)),
    "message.deferred": ("The upstream refused a recipient for now: it is retried", (DeliveryEvent,)),
    "message.bounced": ("The upstream refused a recipient for good, or a bounce report says it failed",
                        (DeliveryEvent, ReportedEvent)),
    "message.failed": ("A recipient still deferred when the message's lifetime ended", (DeliveryEvent,)),
    "message.canceled": ("A pending recipient canceled through the status API", (DeliveryEvent,)),
    "message.suppressed": ("A recipient left out: it is on the suppression list", (DeliveryEvent,)),
    "message.delayed": ("A bounce report says the delivery is delayed", (ReportedEvent,)),
    "message.autoresponded": ("An auto-reply came back to the message's bounce address", (ReportedEvent,)),
    "message.unknown": ("Other mail, or a report of no known action, came to the bounce address", (ReportedEvent,)),
    "message.unsubscribed": ("A recipient unsubscribed (the message's one-click link or its mailto)",
                             (ReportedEvent,)),
    "message.inbound": ("Mail received for an inbound route", (InboundEvent,)),
}
# Standard Webhooks: what the receiver verifies each event with (the standardwebhooks package does it).
SIGNATURE_HEADERS: list[dict[str, Any]] = [
    {"name": "webhook-id", "in": "header", "required": True,
     "description": "The delivery's id, the same on every retry of it: de-duplicate on it",
     "schema": {"type": "string", "pattern": "^msg_[0-9a-f]{24}$"}},
    {"name": "webhook-timestamp", "in": "header", "required": True,
     "description": "When this attempt was signed, in seconds since 1970 (UTC): refuse one far from now",
     "schema": {"type": "string", "pattern": "^[0-9]+$"}},
    {"name": "webhook-signature", "in": "header", "required": True,
     "description": "v1,<base64 HMAC-SHA256> by each secret of GATEWAY_WEBHOOK_SECRET, separated by spaces",
     "schema": {"type": "string", "pattern": "^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$"}},
]
# What the receiver answers, and what the gateway does then.
RECEIVER_RESPONSES: dict[str, Any] = {
    "2XX": {"description": "Delivered: the event is not sent again"},
    "410": {"description": "Gone: nothing more is sent to this URL, the pending events included (logged)"},
    "default": {"description": "Anything else (another status, a redirect, which is never followed, or no whole "
                               "answer within GATEWAY_WEBHOOK_TIMEOUT): sent again, with the same webhook-id, with "
                               "backoff for up to a day"},
}


def webhooks(refs: dict[Any, Any]) -> dict[str, Any]:
    """The document's ``webhooks``; ``refs`` maps each of ``MODELS`` (validation mode) to its schema reference."""
    described = {}
    for name, (summary, models) in WEBHOOKS.items():
        schemas = [refs[(model, "validation")] for model in models]
        schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
        described[name] = {"post": {
            "summary": summary, "operationId": "receive_" + name.replace(".", "_"),
            "parameters": SIGNATURE_HEADERS,
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
            "responses": RECEIVER_RESPONSES}}
    return described
