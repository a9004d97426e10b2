"""Settings of the developer outbox page."""

from __future__ import annotations

import secrets

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, field_validator

from mail_gateway.settings.core import Subject

MIN_SESSION_SECRET = 32


class OutboxSettings(Subject):
    # GATEWAY_INBOX_ENABLED is the name of earlier versions, still read.
    gateway_outbox_enabled: bool | None = Field(
        None, validation_alias=AliasChoices("gateway_outbox_enabled", "gateway_inbox_enabled"),
        description="set it to true or false (default: true except in production)",
    )
    gateway_outbox_session_secret: SecretStr | None = Field(
        None, description=f"set it to a random string of at least {MIN_SESSION_SECRET} characters, the same on "
        "every host serving the outbox page (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'), "
        "or leave it unset for a secret drawn at each start",
    )
    gateway_outbox_session_lifetime: float = Field(
        12 * 3600, gt=0, le=30 * 86400,
        description="set it to the seconds an outbox page login lasts (more than 0, at most 2592000)",
    )
    # Drawn when the settings are read: by `serve --workers N`'s master before it forks, so every worker process
    # holds the same one and accepts the others' cookies, and every restart draws another.
    _drawn_session_secret: bytes = PrivateAttr(default_factory=lambda: secrets.token_bytes(32))

    @field_validator("gateway_outbox_session_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SESSION_SECRET:
            raise ValueError(f"it is shorter than {MIN_SESSION_SECRET} characters, too short to sign with")
        return value

    @property
    def outbox_session_secret(self) -> bytes:
        """What signs the outbox page's login cookies: GATEWAY_OUTBOX_SESSION_SECRET when set (shared by several
        hosts; changing it revokes every cookie), else the secret drawn when these settings were read (a restart
        revokes every cookie)."""
        if self.gateway_outbox_session_secret is not None:
            return self.gateway_outbox_session_secret.get_secret_value().encode("utf-8")
        return self._drawn_session_secret
