"""The suppression API's JSON, as pydantic models: the OpenAPI document describes ``/v1/suppressions`` from these."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from typing_extensions import TypeAliasType

from mail_gateway.mail.fields import StoredText
from mail_gateway.mail.times import Rfc3339Time
from mail_gateway.store.suppressions import check_listable

SuppressionReason = TypeAliasType("SuppressionReason", Literal["hard-bounce", "complaint", "unsubscribe", "manual"])
SuppressionSource = TypeAliasType("SuppressionSource", Literal["smtp", "dsn", "unsubscribe", "api"])


class SuppressionQuery(BaseModel):
    """Each parameter at most once; ``mail_gateway.http.query`` reads them, within these bounds."""

    model_config = ConfigDict(extra="forbid")

    address: StoredText | None = Field(
        None, max_length=320, description="only addresses containing this text (any case of its ASCII letters)")
    reason: SuppressionReason | None = Field(None, description="only entries of this reason")
    limit: int = Field(50, ge=1, le=1000, description="at most this many (1-1000)")
    start: int = Field(0, ge=0, le=10**9, description="skip this many (0-1000000000)")


class NewSuppression(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str = Field(min_length=3, max_length=320, description="the address never to send to")
    reason: SuppressionReason = Field("manual", description="why; manual unless given")
    detail: StoredText | None = Field(None, max_length=2000, description="a note kept with the entry")
    expires_at: Rfc3339Time | None = Field(None, description="RFC 3339 with a time zone; none: until removed")

    @field_validator("address")
    @classmethod
    def _one_mailbox(cls, value: str) -> str:
        check_listable(value)
        return value

    @field_validator("expires_at")
    @classmethod
    def _not_past(cls, value: datetime | None) -> datetime | None:
        # Checked before anything is written: an address already listed would otherwise be renewed with it.
        if value is not None and value.timestamp() <= time.time():
            raise ValueError("is in the past; give a later time, or none")
        return value


class Suppression(BaseModel):
    address: str = Field(description="the address as it was given")
    reason: SuppressionReason
    source: SuppressionSource
    message_id: str | None = Field(None, description="the queued message whose delivery caused it")
    detail: str | None = Field(None, description="the SMTP reply or DSN diagnostic, or the note given")
    created_at: str = Field(description="RFC 3339")
    expires_at: str | None = Field(None, description="RFC 3339; none: until removed")


class SuppressionList(BaseModel):
    suppressions: list[Suppression]
    limit: int
    start: int
