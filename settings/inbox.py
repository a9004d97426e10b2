"""Settings of the developer inbox and the console's output format."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings


class InboxSettings(BaseSettings):
    gateway_inbox_enabled: bool | None = Field(
        None, description="set it to true or false (default: true except in production)"
    )
    mail_console_format: Literal["summary", "raw"] | None = Field(
        None, description="set it to summary or raw (default: summary in development, raw otherwise)"
    )

    # The defaults depend on GATEWAY_ENV, a field of the settings class this one is mixed into.

    @property
    def inbox_enabled(self) -> bool:
        if self.gateway_inbox_enabled is not None:
            return self.gateway_inbox_enabled
        return getattr(self, "gateway_env", "production") != "production"

    @property
    def console_format(self) -> Literal["summary", "raw"]:
        if self.mail_console_format is not None:
            return self.mail_console_format
        return "summary" if getattr(self, "gateway_env", None) == "development" else "raw"
