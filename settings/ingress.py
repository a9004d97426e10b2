"""Settings of the SMTP ingress (``mail-gateway smtpd`` and ``serve --smtp``).

Only what can be checked without touching the network or the disk is validated here; whether the listening
address is exposed and whether the certificate loads are checked when the ingress starts
(``mail_gateway.ingress.security``), so ``serve`` without ``--smtp`` never fails because of them.
"""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator, model_validator

from mail_gateway.settings.core import MAX_MESSAGE_BYTES, OptionalPath, Port, Subject
from mail_gateway.settings.webhook_url import check_webhook_url

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")


def parse_users(value: str) -> dict[str, str]:
    """``"alice:s3cret bob:pw"`` (commas or whitespace between pairs) -> ``{"alice": "s3cret", "bob": "pw"}``.

    Errors name the user or the pair's position, never a password.
    """
    users: dict[str, str] = {}
    for position, pair in enumerate(value.replace(",", " ").split(), start=1):
        user, sep, password = pair.partition(":")
        if not sep or not user or not password:
            raise ValueError(f"pair {position} is not user:password")
        if user in users:
            raise ValueError(f"user {user!r} is listed twice")
        users[user] = password
    if not users:
        raise ValueError("no user:password pair")
    return users


def parse_routes(value: str) -> tuple[tuple[str, str], ...]:
    """``"support@example.com=https://h/in, *@in.example.com=https://h/all"`` -> ((address, url), ...)."""
    routes: list[tuple[str, str]] = []
    for position, pair in enumerate(value.replace(",", " ").split(), start=1):
        address, sep, url = pair.partition("=")
        local, at, domain = address.lower().rpartition("@")
        if not sep or not at or not local or not _DOMAIN.match(domain.rstrip(".")):
            raise ValueError(f"route {position} is not address=URL with an address such as support@example.com "
                             "or *@in.example.com")
        try:
            check_webhook_url(url)
        except ValueError as exc:
            raise ValueError(f"route {position}'s URL: {exc}") from None
        if any(known == f"{local}@{domain.rstrip('.')}" for known, _ in routes):
            raise ValueError(f"route {position}'s address is listed twice")
        routes.append((f"{local}@{domain.rstrip('.')}", url))
    if not routes:
        raise ValueError("no address=URL route")
    return tuple(routes)


class IngressSettings(Subject):
    gateway_smtp_host: str = Field(
        "127.0.0.1", description="set it to the address the SMTP ingress listens on, e.g. 127.0.0.1"
    )
    gateway_smtp_port: Port = Field(1025, description="set it to a port number from 1 to 65535")
    gateway_smtp_max_message_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, le=MAX_MESSAGE_BYTES,
        description="set it to the largest message accepted, in bytes, from 1024 to 1073741824 (1 GiB)",
    )
    gateway_smtp_max_recipients: int = Field(
        100, ge=1, le=10000, description="set it to the most recipients per message, from 1 to 10000"
    )
    gateway_smtp_timeout: float = Field(
        300.0, gt=0, le=3600,
        description="set it to the seconds a client may take per command, greater than 0 and at most 3600",
    )
    gateway_smtp_max_sessions: int = Field(
        20, ge=1, le=1000, description="set it to the most concurrent SMTP connections, from 1 to 1000"
    )
    gateway_smtp_max_sessions_per_address: int = Field(
        10, ge=1, le=1000,
        description="set it to the most concurrent SMTP connections from one client address, from 1 to 1000",
    )
    gateway_smtp_start_timeout: float = Field(
        30.0, gt=0, le=3600,
        description="set it to the seconds a new SMTP session has to reach MAIL FROM (AUTH included), greater "
        "than 0 and at most 3600",
    )
    gateway_smtp_max_session_seconds: float = Field(
        600.0, gt=0, le=86400,
        description="set it to the seconds one SMTP session may last in all, greater than 0 and at most 86400",
    )
    gateway_smtp_max_auth_failures: int = Field(
        3, ge=1, le=100, description="set it to the failed AUTH attempts after which a session is closed (1 to 100)"
    )
    gateway_smtp_users: SecretStr | None = Field(
        None, description="set it to user:password pairs separated by commas, e.g. 'app:secret,cron:other'"
    )
    gateway_smtp_tls_cert: OptionalPath = Field(
        None, description="set it to the PEM certificate (chain) file offered with STARTTLS"
    )
    gateway_smtp_tls_key: OptionalPath = Field(
        None, description="set it to the PEM private key file of GATEWAY_SMTP_TLS_CERT"
    )
    gateway_smtp_allow_insecure_auth: bool = Field(
        False, description="set it to true or false (true allows AUTH without TLS, on a loopback address only)"
    )
    gateway_smtp_allow_private_without_auth: bool = Field(
        False,
        description="set it to true or false (true allows a private-network address without AUTH; "
        "public and wildcard addresses always need AUTH)",
    )

    gateway_bounce_domain: str | None = Field(
        None, description="set it to the domain bounces come back to, such as bounce.example.com (its MX pointing at "
                          "the SMTP ingress)")

    gateway_inbound_routes: str | None = Field(
        None, description="set it to address=URL pairs separated by commas, such as "
                          "'support@example.com=https://hooks.example.com/in,*@in.example.com=https://hooks.example.com/all'")

    @field_validator("gateway_inbound_routes", mode="before")
    @classmethod
    def _routes(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        parse_routes(str(value))
        return str(value)

    @property
    def inbound_routes(self) -> tuple[tuple[str, str], ...]:
        """Each (``local@domain`` or ``*@domain``, webhook URL), in the order given; empty when none."""
        return () if self.gateway_inbound_routes is None else parse_routes(self.gateway_inbound_routes)

    @field_validator("gateway_bounce_domain", mode="before")
    @classmethod
    def _bounce_domain(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        domain = str(value).strip().lower().rstrip(".")
        if not _DOMAIN.match(domain):
            raise ValueError("it is not a domain name such as bounce.example.com")
        return domain

    @field_validator("gateway_smtp_users")
    @classmethod
    def _users_well_formed(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        parse_users(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> IngressSettings:
        if (self.gateway_smtp_tls_cert is None) != (self.gateway_smtp_tls_key is None):
            raise ValueError(
                "GATEWAY_SMTP_TLS_CERT and GATEWAY_SMTP_TLS_KEY go together; set both (STARTTLS) or neither"
            )
        return self

    @property
    def smtp_users(self) -> dict[str, str]:
        """The AUTH users and their passwords; empty when AUTH is off."""
        if self.gateway_smtp_users is None:
            return {}
        return parse_users(self.gateway_smtp_users.get_secret_value())
