"""The outbox routes' query and answers as pydantic models, from which the OpenAPI document describes them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_START = 10**9


class OutboxQuery(BaseModel):
    """The list's paging and filters (``api.list_messages`` reads them, with these bounds)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"messages per page (1 to {MAX_LIMIT})")
    start: int = Field(0, ge=0, le=MAX_START, description="how many matching messages to skip, newest first")
    to: str | None = Field(None, description="case-insensitive substring of To, Cc or Bcc")
    from_: str | None = Field(None, alias="from", description="case-insensitive substring of From")
    subject: str | None = Field(None, description="case-insensitive substring of the subject")


class MessageSummary(BaseModel):
    """One kept message, as lists show it."""

    id: str = Field(description="the outbox's id of the message, for the other routes")
    message_id: str
    from_: str = Field(alias="from")
    to: list[str]
    cc: list[str]
    subject: str
    date: str | None = Field(description="ISO 8601")
    size: int = Field(description="bytes")
    attachment_count: int


class OutboxPage(BaseModel):
    """A page of kept messages, newest first."""

    total: int = Field(description="how many messages match the filters")
    start: int
    limit: int
    messages: list[MessageSummary]


class HeaderField(BaseModel):
    name: str
    value: str


class AttachmentInfo(BaseModel):
    index: int
    filename: str | None
    content_type: str
    size: int
    content_id: str | None
    inline: bool


class MessageDetail(MessageSummary):
    """One kept message: its headers, text, HTML and attachments."""

    bcc: list[str] = Field(description="envelope recipients no header shows, where the backend kept the envelope")
    headers: list[HeaderField]
    text: str | None
    html: str | None
    attachments: list[AttachmentInfo]
    template: str | None = Field(description="the stored template and version it was rendered from (its X-Template "
                                             "header, e.g. welcome; version=3), or null")
