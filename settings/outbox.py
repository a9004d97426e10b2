"""Settings of the developer outbox page."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings


class OutboxSettings(BaseSettings):
    # GATEWAY_INBOX_ENABLED is the name of earlier versions, still read.
    gateway_outbox_enabled: bool | None = Field(
        None, validation_alias=AliasChoices("gateway_outbox_enabled", "gateway_inbox_enabled"),
        description="set it to true or false (default: true except in production)",
    )
