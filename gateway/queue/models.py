"""The status API's JSON, as pydantic models: the OpenAPI document describes the routes from these. (What the
send routes answer with queued delivery is in ``mail_gateway.http.responses``, beside their direct answers.)"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeAliasType

from mail_gateway.mail.fields import StoredText

# Named schemas in the OpenAPI document, not inline enums a generated client would have to name itself.
RecipientState = TypeAliasType(
    "RecipientState",
    Literal["queued", "scheduled", "deferred", "delivered", "bounced", "failed", "canceled", "suppressed"])
# A message's metadata as it is shown and sent with its events (``mail_gateway.mail.tags``).
MessageMetadata = TypeAliasType("MessageMetadata", dict[str, str])
MessageState = TypeAliasType(
    "MessageState",
    Literal["queued", "scheduled", "deferred", "delivered", "bounced", "failed", "canceled", "suppressed", "partial"])


class QueuedRecipientStatus(BaseModel):
    email: str
    status: RecipientState
    attempts: int
    code: int | None = Field(None, description="the last SMTP reply code")
    reason: str | None = Field(None, description="the last SMTP reply text, or why it failed")
    next_attempt_at: str | None = Field(None, description="RFC 3339; while the recipient is pending")


class QueueEvent(BaseModel):
    at: str = Field(description="RFC 3339")
    type: str = Field(description="delivered, deferred, bounced, failed, unknown (reply lost after the final dot), "
                                  "canceled, retry, suppressed, or an event recorded later (bounced or delayed by a "
                                  "DSN, unsubscribed)")
    recipient: str | None = None
    upstream: str | None = None
    code: int | None = None
    text: str | None = None


class QueuedMessageSummary(BaseModel):
    id: str
    message_id: str
    status: MessageState
    created_at: str
    send_at: str | None = None
    size: int
    attempts: int
    api_key: str | None = Field(None, description="the name of the API key that sent it; null for an unnamed key and "
                                                  "for a message sent without a key (the SMTP ingress, the library)")
    tags: list[str] = Field(default_factory=list, description="its tags (the X-Tags header), also in every webhook "
                                                               "of its events")
    metadata: MessageMetadata = Field(default_factory=dict, description="its metadata (the X-Metadata-* headers), "
                                                                       "also in every webhook of its events")


class QueuedMessageStatus(QueuedMessageSummary):
    """A queued message, each recipient's state and every attempt."""

    recipients: list[QueuedRecipientStatus]
    events: list[QueueEvent]


class QueuedMessageList(BaseModel):
    """One page of the store's messages, oldest first."""

    total: int
    start: int
    limit: int
    messages: list[QueuedMessageSummary]


class QueueListQuery(BaseModel):
    """Each parameter at most once; ``mail_gateway.http.query`` reads them, within these bounds."""

    model_config = ConfigDict(extra="forbid")

    status: MessageState | None = Field(None, description="only messages in this state")
    limit: int = Field(50, ge=1, le=1000, description="at most this many (1-1000)")
    start: int = Field(0, ge=0, le=10**9, description="skip this many (0-1000000000)")
    tag: StoredText | None = Field(None, min_length=1, max_length=128,
                                   description="only messages with this tag, exactly")
    recipient: StoredText | None = Field(None, min_length=1, max_length=998,
                                         description="only messages sent to this address, whatever the case of its "
                                                     "ASCII letters")
