"""The gateway's typed settings, read from environment variables and a ``.env`` file.

Every field's ``description`` is the fix shown when its value is invalid, so a start-up error names the
variable and says what to set it to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from backends.addresses import normalize_address
from settings.api import ApiSettings
from settings.inbox import InboxSettings
from settings.ingress import IngressSettings
from settings.smtp_production import SmtpProductionSettings

BUILTIN_BACKENDS = ("smtp", "console", "file", "memory")
DEFAULT_BACKEND_BY_ENV = {"development": "console", "testing": "memory", "production": "smtp"}

Port = Annotated[int, Field(ge=1, le=65535)]


class GatewaySettings(ApiSettings, SmtpProductionSettings, IngressSettings, InboxSettings, BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    gateway_env: Literal["development", "testing", "production"] = Field(
        "development", description="set it to development, testing or production"
    )
    gateway_host: str = Field("127.0.0.1", description="set it to the address to listen on, e.g. 127.0.0.1")
    gateway_port: Port = Field(8000, description="set it to a port number from 1 to 65535")

    mail_backend: str | None = Field(
        None,
        description="set it to smtp, console, file, memory or a dotted path package.module.ClassName",
    )
    mail_default_sender: Annotated[str, AfterValidator(normalize_address)] | None = Field(
        None, description="set it to an address such as 'App <app@example.com>'"
    )

    mail_server: str | None = Field(None, description="set it to the SMTP server's host name")
    mail_port: Port = Field(25, description="set it to a port number from 1 to 65535")
    mail_use_tls: bool = Field(False, description="set it to true or false")
    mail_use_ssl: bool = Field(False, description="set it to true or false")
    mail_username: str | None = Field(None, description="set it to the SMTP login name")
    mail_password: SecretStr | None = Field(None, description="set it to the SMTP password")
    mail_timeout: float = Field(
        10.0, gt=0, le=600, description="set it to a number of seconds greater than 0 and at most 600"
    )

    mail_file_path: Path | None = Field(
        None, description="set it to a writable directory for the file backend's .eml files"
    )
    mail_console_stream: Literal["stdout", "stderr"] = Field(
        "stdout", description="set it to stdout or stderr"
    )
    mail_memory_max_messages: int = Field(
        1000, ge=1, description="set it to how many messages the memory backend keeps (at least 1)"
    )

    @field_validator("mail_backend")
    @classmethod
    def _known_backend(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        value = value.strip()
        if value.lower() in BUILTIN_BACKENDS:
            return value.lower()
        module, _, cls_name = value.rpartition(".")
        if not module or not cls_name.isidentifier():
            raise ValueError(f"unknown backend {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> GatewaySettings:
        if self.mail_use_tls and self.mail_use_ssl:
            raise ValueError(
                "MAIL_USE_TLS and MAIL_USE_SSL are both true; set only one "
                "(MAIL_USE_TLS for STARTTLS, usually port 587; MAIL_USE_SSL for implicit TLS, usually 465)"
            )
        if self.backend_name == "smtp" and self.gateway_env == "production" and not self.mail_server:
            raise ValueError(
                "MAIL_SERVER is not set; production delivers over SMTP, so set MAIL_SERVER to the "
                "SMTP server's host name (or choose another MAIL_BACKEND)"
            )
        if self.backend_name == "file" and self.mail_file_path is None:
            raise ValueError("MAIL_FILE_PATH is not set; the file backend needs a writable directory")
        return self

    @property
    def backend_name(self) -> str:
        """The selected backend: MAIL_BACKEND, or the default for GATEWAY_ENV."""
        return self.mail_backend or DEFAULT_BACKEND_BY_ENV[self.gateway_env]

    @property
    def smtp_host(self) -> str:
        return self.mail_server or "localhost"
