"""Settings for production SMTP: ``MAIL_URL``, the connection pool, retries, TLS files and failover.

``MAIL_URL``, when set, overrides the separate ``MAIL_BACKEND``/``MAIL_SERVER``/... variables: it is
parsed before the other fields are validated and written over them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings

from settings.mail_url import MailUrl, Upstream, parse_mail_url

_URL_FIX = ("set it to e.g. smtp://user:password@host:587?tls=starttls, smtps://host:465, console://, "
            "file:///var/spool/gateway, memory://, failover(smtp://a:587 smtp://b:587) or roundrobin(...)")


def _raw(value: Any) -> str | None:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value if isinstance(value, str) and value.strip() else None


class SmtpProductionSettings(BaseSettings):
    mail_url: SecretStr | None = Field(None, description=_URL_FIX)

    mail_ssl_cafile: Path | None = Field(
        None, description="set it to a PEM file of the CA certificates that may sign the SMTP server's certificate"
    )
    mail_ssl_certfile: Path | None = Field(
        None, description="set it to a PEM file holding the client certificate (and chain) to present"
    )
    mail_ssl_keyfile: Path | None = Field(
        None, description="set it to the PEM file of the client certificate's private key"
    )

    mail_pool_size: int = Field(
        8, ge=1, le=256, description="set it to how many SMTP connections to keep per upstream (1 to 256)"
    )
    mail_pool_idle_timeout: float = Field(
        30.0, gt=0, le=3600, description="set it to the seconds an idle connection is kept (more than 0, at most 3600)"
    )
    mail_pool_max_messages: int = Field(
        100, ge=1, description="set it to how many messages one connection sends before it is replaced (at least 1)"
    )

    mail_retry_attempts: int = Field(
        3, ge=1, le=20, description="set it to how many times a message is tried in all (1 to 20)"
    )
    mail_retry_backoff: float = Field(
        0.5, gt=0, le=60, description="set it to the first retry's delay in seconds (more than 0, at most 60)"
    )
    mail_retry_deadline: float = Field(
        30.0, gt=0, le=600, description="set it to the seconds all attempts of one message may take (at most 600)"
    )
    mail_upstream_rest: float = Field(
        30.0, ge=0, le=3600, description="set it to the seconds a failed upstream is skipped (0 to 3600)"
    )

    @field_validator("mail_url")
    @classmethod
    def _parseable_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip():
            parse_mail_url(value.get_secret_value())  # raises ValueError with a reason free of the URL
            return value
        return None

    @model_validator(mode="before")
    @classmethod
    def _url_overrides_separate_variables(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        text = _raw(data.get("mail_url"))
        if text is None:
            return data
        try:
            url = parse_mail_url(text)
        except ValueError:
            return data  # the field validator reports it, naming MAIL_URL
        data = dict(data)
        data["mail_backend"] = url.backend
        if url.backend == "file":
            data["mail_file_path"] = url.file_path
        if url.upstreams:
            first = url.upstreams[0]
            data.update(mail_server=first.host, mail_port=first.port, mail_use_tls=first.security == "starttls",
                        mail_use_ssl=first.security == "ssl", mail_username=first.username,
                        mail_password=first.password)
        return data

    @model_validator(mode="after")
    def _client_key_needs_certificate(self) -> SmtpProductionSettings:
        if self.mail_ssl_keyfile is not None and self.mail_ssl_certfile is None:
            raise ValueError("MAIL_SSL_KEYFILE is set without MAIL_SSL_CERTFILE; set MAIL_SSL_CERTFILE to the "
                             "client certificate, or unset MAIL_SSL_KEYFILE")
        return self

    @property
    def parsed_mail_url(self) -> MailUrl | None:
        return parse_mail_url(self.mail_url.get_secret_value()) if self.mail_url is not None else None

    def smtp_upstreams(self) -> tuple[str, tuple[Upstream, ...]]:
        """The SMTP strategy (single, failover, roundrobin) and its upstreams, from MAIL_URL or the variables."""
        url = self.parsed_mail_url
        if url is not None and url.upstreams:
            return url.strategy, url.upstreams
        security = "ssl" if self.mail_use_ssl else "starttls" if self.mail_use_tls else "none"
        host = self.mail_server or "localhost"
        return "single", (Upstream(host, self.mail_port, security, self.mail_username, self.mail_password),)
