"""Settings of the developer outbox page."""

from __future__ import annotations

import secrets

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, field_validator

from mail_gateway.settings.core import Subject
from mail_gateway.settings.hosts import check_host, split_url

MIN_SESSION_SECRET = 32
RELEASE_SCHEMES = {"smtp": False, "smtp+starttls": True}  # whether the scheme asks for STARTTLS


def release_relay(url: str) -> tuple[str, int, bool]:
    """GATEWAY_OUTBOX_RELEASE_URL as (host, port, starttls); ValueError saying what to write instead."""
    parsed = split_url(url)
    try:
        port = parsed.port
    except ValueError:
        port = 0
    # A port of 0 or none after the ':' was port 25, and a query or fragment was dropped, without a word.
    login = parsed.username is not None  # "" for smtp://:password@host, which a truth test would let through
    if parsed.scheme not in RELEASE_SCHEMES or not parsed.hostname or port == 0 or parsed.netloc.endswith(":") or \
            login or parsed.path or "?" in url or "#" in url:
        raise ValueError("write it as smtp://host:port or smtp+starttls://host:port, without a login, a path or a "
                         "query")
    return check_host(parsed.hostname), port or 25, RELEASE_SCHEMES[parsed.scheme]


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
    gateway_chaos: str | None = Field(
        None, description="set it to the failures the development backends inject, such as "
        "'reply=451;percent=50;recipients=*@bounce.test;delay_ms=200', or leave it unset (off)",
    )
    gateway_outbox_release_url: str | None = Field(
        None, description="set it to the SMTP server the outbox releases kept messages to, as "
        "smtp://host:port (smtp+starttls:// for STARTTLS), or leave it unset to type a host for each release",
    )
    gateway_outbox_allow_internal_links: bool = Field(
        False, description="set it to true to let the link check fetch loopback, private and link-local addresses "
        "(links to your own machine or network), or leave it false: anyone who can send mail could otherwise probe "
        "the gateway's network through it",
    )
    # Drawn when the settings are read: by `serve --workers N`'s master before it forks, so every worker process
    # holds the same one and accepts the others' cookies, and every restart draws another.
    _drawn_session_secret: bytes = PrivateAttr(default_factory=lambda: secrets.token_bytes(32))

    @field_validator("gateway_outbox_session_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        if len(value.get_secret_value()) < MIN_SESSION_SECRET:
            raise ValueError(f"it is shorter than {MIN_SESSION_SECRET} characters, too short to sign with")
        return value

    @field_validator("gateway_outbox_release_url")
    @classmethod
    def _an_smtp_url(cls, value: str | None) -> str | None:
        if value is not None:
            release_relay(value)
        return value

    @property
    def outbox_session_secret(self) -> bytes:
        """What signs the outbox page's login cookies: GATEWAY_OUTBOX_SESSION_SECRET when set (shared by several
        hosts; changing it revokes every cookie), else the secret drawn when these settings were read (a restart
        revokes every cookie)."""
        if self.gateway_outbox_session_secret is not None:
            return self.gateway_outbox_session_secret.get_secret_value().encode("utf-8")
        return self._drawn_session_secret
