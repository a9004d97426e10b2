"""Settings of one-click unsubscribe (RFC 8058): where the gateway is reached from outside, and the key its links
are signed with."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from mail_gateway.settings.core import Subject
from mail_gateway.settings.hosts import split_url
from mail_gateway.settings.webhook_url import check_webhook_url

MIN_SECRET_CHARS = 32


class UnsubscribeSettings(Subject):
    gateway_public_url: str | None = Field(
        None, description="set it to the https:// address the gateway's HTTP API is reached at from outside, "
                          "such as https://mail.example.com")
    # Tokens are signed, not stored: this key is what makes them unforgeable, and changing it voids every link
    # already sent.
    gateway_unsubscribe_secret: SecretStr | None = Field(
        None, description=f"set it to a random string of at least {MIN_SECRET_CHARS} characters (python -c "
                          "'import secrets; print(secrets.token_urlsafe(32))')")

    # Named apart from the other subjects' validators: GatewaySettings inherits them all, and one name would hide
    # another (it did: a secret too short went through).
    @field_validator("gateway_public_url", "gateway_unsubscribe_secret", mode="before")
    @classmethod
    def _unsubscribe_blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("gateway_public_url")
    @classmethod
    def _public_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = split_url(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or "?" in value or "#" in value:
            raise ValueError("it is not an http:// or https:// address without a query, such as "
                             "https://mail.example.com")
        if "@" in parts.netloc:  # never repeated: what stands before the '@' is a login
            raise ValueError("it holds a user name or password (user:password@), which every unsubscribe link would "
                             "carry to its recipients; remove it: the links need no login")
        # Read as a webhook URL is (a port in range, no space or control character, a host in ASCII): the links
        # are written into List-Unsubscribe as given, where a line break failed every send asking for one.
        return check_webhook_url(value).rstrip("/")

    @field_validator("gateway_unsubscribe_secret")
    @classmethod
    def _unsubscribe_secret_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        if len(value.get_secret_value()) < MIN_SECRET_CHARS:
            raise ValueError(f"it is shorter than {MIN_SECRET_CHARS} characters")
        return value

    @property
    def unsubscribe_configured(self) -> bool:
        return self.gateway_public_url is not None and self.gateway_unsubscribe_secret is not None
