"""The settings of every subject in one class, and the rules that join several subjects."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from mail_gateway.settings.core import CoreSettings, LocalBackendSettings
from mail_gateway.settings.http import HttpApiSettings
from mail_gateway.settings.ingress import IngressSettings
from mail_gateway.settings.outbox import OutboxSettings
from mail_gateway.settings.smtp import SmtpSettings

DEFAULT_BACKEND_BY_ENV = {"development": "console", "testing": "memory", "production": "smtp"}


class GatewaySettings(CoreSettings, LocalBackendSettings, SmtpSettings, HttpApiSettings, IngressSettings,
                      OutboxSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    @model_validator(mode="after")
    def _consistent(self) -> GatewaySettings:
        if self.backend_name == "smtp" and self.gateway_env == "production" and not self.smtp_server_configured:
            raise ValueError(
                "MAIL_SERVER is not set; production delivers over SMTP, so set MAIL_SERVER to the "
                "SMTP server's host name (or choose another MAIL_BACKEND)"
            )
        if self.backend_name == "file" and self.file_path is None:
            raise ValueError("MAIL_FILE_PATH is not set; the file backend needs a writable directory")
        if self.gateway_env == "production" and self.gateway_api_keys is None and not self.gateway_allow_anonymous:
            raise ValueError(
                "GATEWAY_API_KEYS is not set; production protects /v1 with API keys, so set GATEWAY_API_KEYS "
                "to one or more keys separated by commas (or GATEWAY_ALLOW_ANONYMOUS=true to serve without)"
            )
        return self

    @property
    def backend_name(self) -> str:
        """The selected backend: MAIL_URL's, MAIL_BACKEND, or the default for GATEWAY_ENV."""
        if self.mail_url is not None:
            return self.mail_url.backend
        return self.mail_backend or DEFAULT_BACKEND_BY_ENV[self.gateway_env]

    @property
    def smtp_server_configured(self) -> bool:
        return bool(self.mail_server) or (self.mail_url is not None and bool(self.mail_url.upstreams))

    @property
    def file_path(self) -> Path | None:
        """The file backend's directory: MAIL_URL's ``file://`` path, or MAIL_FILE_PATH."""
        if self.mail_url is not None and self.mail_url.file_path is not None:
            return self.mail_url.file_path
        return self.mail_file_path

    @property
    def outbox_enabled(self) -> bool:
        if self.gateway_outbox_enabled is not None:
            return self.gateway_outbox_enabled
        return self.gateway_env != "production"

    @property
    def console_format(self) -> Literal["summary", "raw"]:
        if self.mail_console_format is not None:
            return self.mail_console_format
        return "summary" if self.gateway_env == "development" else "raw"

    @property
    def console_keeps_messages(self) -> bool:
        if self.mail_console_keep is not None:
            return self.mail_console_keep
        return self.gateway_env == "development"

