"""The outbox routes' query and answers as pydantic models, from which the OpenAPI document describes them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeAliasType

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_START = 10**9
MAX_QUERY = 1000
MAX_WAIT_SECONDS = 60
MAX_BULK_IDS = 10_000
# A message may hold any number of links (a hundred thousand made an 11 MB detail): the detail lists this many and
# counts them all, and the page draws the list it is given.
LINKS_LISTED = 500
# Named, so the OpenAPI document refers to them instead of writing the choices out in place.
BulkActionName = TypeAliasType("BulkActionName", Literal["delete", "read", "unread"])
LinkKind = TypeAliasType("LinkKind", Literal["href", "src"])


class OutboxQuery(BaseModel):
    """The list's paging and filters (``api.list_messages`` reads them, with these bounds)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"messages per page (1 to {MAX_LIMIT})")
    start: int = Field(0, ge=0, le=MAX_START, description="how many matching messages to skip, newest first")
    to: str | None = Field(None, description="case-insensitive substring of To, Cc or Bcc")
    from_: str | None = Field(None, alias="from", description="case-insensitive substring of From")
    subject: str | None = Field(None, description="case-insensitive substring of the subject")
    query: str | None = Field(None, max_length=MAX_QUERY, description="a search in Mailpit's language: words, "
                              "\"phrases\", from:, to:, cc:, subject:, message-id:, tag:, has:attachment, is:read, "
                              "is:unread, larger:10K, smaller:1M, before:2026-01-31, after:2026-01-01, -term")
    owner: str | None = Field(None, max_length=64, description="admin keys only: the API key name whose mail "
                              "to list (default: every key's)")


class ClearQuery(BaseModel):
    """Whose kept messages ``DELETE /v1/outbox`` forgets."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    owner: str | None = Field(None, max_length=64, description="admin keys only: the API key name whose mail to "
                              "forget (default: every key's)")


class RawQuery(BaseModel):
    """How the raw message is answered."""

    model_config = ConfigDict(frozen=True)

    download: bool = Field(False, description="1 (or true) saves it as <id>.eml; 0 (or false, the default) shows it")


class WaitQuery(BaseModel):
    """What ``wait`` waits for, and how long."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    query: str = Field("", max_length=MAX_QUERY, description="the search a message must match (empty: any)")
    timeout: int = Field(30, ge=0, le=MAX_WAIT_SECONDS, description=f"seconds to wait (0 to {MAX_WAIT_SECONDS})")
    owner: str | None = Field(None, max_length=64, description="admin keys only: whose mail to wait for")


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
    snippet: str = Field(description="the first 140 characters of the text, whitespace collapsed")
    tags: list[str] = Field(description="the message's tags (its X-Tags header)")
    read: bool
    owner: str | None = Field(description="the name of the API key that sent it, or null")
    template: str | None = Field(description="the stored template and version it was rendered from (its "
                                             "X-Template header, e.g. welcome; version=3), or null")


class Retention(BaseModel):
    """What the outbox keeps, and how many messages its bounds dropped since it started."""

    keep: int | None = Field(description="the newest this many are kept (MAIL_MEMORY_MAX_MESSAGES), or null")
    max_age_seconds: int | None = Field(description="no message older than this is kept (GATEWAY_OUTBOX_MAX_AGE)")
    dropped: int
    dropped_note: str | None = Field(description="what was dropped and why, for a page to show; null if nothing")


class OutboxPage(BaseModel):
    """A page of kept messages, newest first."""

    total: int = Field(description="how many messages match the filters")
    start: int
    limit: int
    messages: list[MessageSummary]
    retention: Retention


class ReadMark(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    read: bool


class BulkAction(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    action: BulkActionName
    ids: list[str] = Field(max_length=MAX_BULK_IDS, description="unknown ids are skipped")


class BulkResult(BaseModel):
    affected: int = Field(description="how many of the ids named a message that was changed")


class Owners(BaseModel):
    owners: list[str] = Field(description="the API key names that own kept messages")


class FoundLink(BaseModel):
    url: str
    text: str = Field(description="the link's text, an image's alt text, or empty")
    kind: LinkKind


class KeptDelivery(BaseModel):
    """What the backend that kept a message recorded of its delivery."""

    backend: str
    accepted: list[str] = Field(description="the envelope recipients it accepted")


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
    links: list[FoundLink] = Field(description=f"the first {LINKS_LISTED} links: each href and src of the HTML, then "
                                   "the text's web addresses")
    link_count: int = Field(description="how many links the message has, those not listed included")
    codes: list[str] = Field(description="one-time codes: 4-8 digits, or 6-8 letters and digits with a digit, "
                                         "within 40 characters of code, OTP, verification, PIN, token...")
    delivery: KeptDelivery | None = Field(description="what the backend recorded of the delivery, or null")
    remote_content: bool = Field(description="whether the HTML loads remote images, styles or fonts")
