"""Every setting of SMTP delivery: the server and login (or ``MAIL_URL``), TLS files, the pool, retries. This
subject is what the SMTP backend is built from (``settings.smtp``).

The names up to ``MAIL_TIMEOUT`` are Flask-Mail's and flask-mailman's. ``MAIL_URL``, when set, overrides the
separate server variables; it is parsed once, by its field's validator, and kept parsed.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from mail_gateway.settings.core import OptionalPath, Port, Subject
from mail_gateway.settings.hosts import check_host
from mail_gateway.settings.mail_url import NOT_ASCII_LOGIN, MailUrl, Upstream, parse_mail_url

_URL_FIX = ("set it to e.g. smtp://user:password@host:587?tls=starttls, smtps://host:465, console://, "
            "file:///var/spool/gateway, memory://, failover(smtp://a:587 smtp://b:587) or roundrobin(...)")


def _parsed_url(value: Any) -> MailUrl | None:
    if isinstance(value, MailUrl) or value is None:
        return value
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not isinstance(text, str):
        raise ValueError("it must be a URL string")
    return parse_mail_url(text) if text.strip() else None  # ValueError with a reason free of the URL


class SmtpSettings(Subject):
    mail_server: str | None = Field(None, description="set it to the SMTP server's host name")
    mail_port: Port = Field(25, description="set it to a port number from 1 to 65535")
    mail_use_tls: bool = Field(False, description="set it to true or false")
    mail_use_ssl: bool = Field(False, description="set it to true or false")
    mail_username: str | None = Field(None, description="set it to the SMTP login name")
    mail_password: SecretStr | None = Field(None, description="set it to the SMTP password")
    mail_timeout: float = Field(
        10.0, gt=0, le=600, description="set it to a number of seconds greater than 0 and at most 600"
    )
    # A secret: MailUrl's reprs never show the password, and validation errors never echo the input.
    mail_url: Annotated[MailUrl | None, NoDecode, BeforeValidator(_parsed_url)] = Field(None, description=_URL_FIX)

    mail_ssl_cafile: OptionalPath = Field(
        None, description="set it to a PEM file of the CA certificates that may sign the SMTP server's certificate"
    )
    mail_ssl_certfile: OptionalPath = Field(
        None, description="set it to a PEM file holding the client certificate (and chain) to present"
    )
    mail_ssl_keyfile: OptionalPath = Field(
        None, description="set it to the PEM file of the client certificate's private key"
    )

    mail_pool_size: int = Field(
        8, ge=1, le=256, description="set it to how many SMTP connections to keep per upstream (1 to 256)"
    )
    mail_pool_batch_connections: int | None = Field(
        None, ge=1, le=255,
        description="set it to how many of MAIL_POOL_SIZE's connections batches may hold at once, fewer than "
        "MAIL_POOL_SIZE (default: half of it)",
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

    @field_validator("mail_username", "mail_password")
    @classmethod
    def _ascii_login(cls, value: str | SecretStr | None) -> str | SecretStr | None:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is not None and not text.isascii():
            raise ValueError(f"it {NOT_ASCII_LOGIN}")
        return value

    @field_validator("mail_server")
    @classmethod
    def _server_host(cls, value: str | None) -> str | None:
        # Blank is unset (production then asks for it); '  ' counted as a server and every send failed on it,
        # as did 'smtp.example.com:587' or a space at either end, which name no host.
        if value is None or not value.strip():
            return None
        if "://" in value:
            raise ValueError("it is a URL; set MAIL_URL to it, or MAIL_SERVER to the host name alone")
        if value.count(":") == 1:
            raise ValueError("it holds a port; give the host name alone, and the port in MAIL_PORT")
        try:
            return check_host(value)
        except ValueError as exc:
            raise ValueError(str(exc).replace("its host", "it", 1)) from None

    @model_validator(mode="after")
    def _consistent_tls(self) -> SmtpSettings:
        if self.mail_use_tls and self.mail_use_ssl:
            raise ValueError(
                "MAIL_USE_TLS and MAIL_USE_SSL are both true; set only one "
                "(MAIL_USE_TLS for STARTTLS, usually port 587; MAIL_USE_SSL for implicit TLS, usually 465)"
            )
        batch = self.mail_pool_batch_connections
        if batch is not None and self.mail_pool_size > 1 and batch >= self.mail_pool_size:
            raise ValueError(f"MAIL_POOL_BATCH_CONNECTIONS={batch} would let batches hold the whole pool of "
                             f"MAIL_POOL_SIZE={self.mail_pool_size}; set it below MAIL_POOL_SIZE so single sends "
                             "keep a connection")
        if self.mail_ssl_keyfile is not None and self.mail_ssl_certfile is None:
            raise ValueError("MAIL_SSL_KEYFILE is set without MAIL_SSL_CERTFILE; set MAIL_SSL_CERTFILE to the "
                             "client certificate, or unset MAIL_SSL_KEYFILE")
        return self

    def _smtp_honours_login_and_tls_files(self, release_uses_tls: bool) -> None:
        """Called when the SMTP backend is the one chosen (other backends read none of these settings): a password
        without a user name, or a TLS file without TLS, would be dropped without a word, and mail sent without
        AUTH or in plain text. ``release_uses_tls``: the outbox releases over STARTTLS, with these files."""
        url_upstreams = self.mail_url is not None and bool(self.mail_url.upstreams)  # then it overrides MAIL_PASSWORD
        password = self.mail_password.get_secret_value() if self.mail_password is not None else ""
        if password and not self.mail_username and not url_upstreams:
            raise ValueError("MAIL_PASSWORD is set without MAIL_USERNAME, and the gateway logs in only with a user "
                             "name; set MAIL_USERNAME too, or unset MAIL_PASSWORD to send without logging in")
        files = [name for name in ("mail_ssl_cafile", "mail_ssl_certfile", "mail_ssl_keyfile")
                 if getattr(self, name) is not None]
        if not files or release_uses_tls or any(up.security != "none" for up in self.smtp_upstreams()[1]):
            return
        turn_on = "use smtps:// or STARTTLS (port 587, or ?tls=starttls) in MAIL_URL" if url_upstreams else \
            "set MAIL_USE_TLS=true (STARTTLS) or MAIL_USE_SSL=true (implicit TLS)"
        raise ValueError(f"{files[0].upper()} is set but the SMTP connection uses no TLS, so it would be ignored and "
                         f"mail sent in plain text; {turn_on}, or unset {files[0].upper()}")

    @property
    def smtp_server_configured(self) -> bool:
        return bool(self.mail_server) or (self.mail_url is not None and bool(self.mail_url.upstreams))

    @property
    def pool_batch_connections(self) -> int:
        """How many pooled connections (per upstream) batches may hold at once: never the whole pool, unless
        the pool has only one connection."""
        if self.mail_pool_batch_connections is not None:
            return min(self.mail_pool_batch_connections, self.mail_pool_size)
        return max(1, self.mail_pool_size // 2)

    def smtp_upstreams(self) -> tuple[str, tuple[Upstream, ...]]:
        """The SMTP strategy (single, failover, roundrobin) and its upstreams, from MAIL_URL or the variables."""
        if self.mail_url is not None and self.mail_url.upstreams:
            return self.mail_url.strategy, self.mail_url.upstreams
        security = "ssl" if self.mail_use_ssl else "starttls" if self.mail_use_tls else "none"
        host = self.mail_server or "localhost"
        return "single", (Upstream(host, self.mail_port, security, self.mail_username, self.mail_password),)
