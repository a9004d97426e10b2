"""The TLS context of the SMTP backend, built and checked once at start-up.

It verifies the server's certificate and host name (Python's defaults), trusts ``MAIL_SSL_CAFILE`` in
addition to the system's CAs, and presents ``MAIL_SSL_CERTFILE``/``MAIL_SSL_KEYFILE`` as the client
certificate. An unreadable file is a ``ConfigurationError`` naming its variable, raised before serving.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

from mail_gateway.errors import ConfigurationError

if TYPE_CHECKING:
    from mail_gateway.settings.smtp import SmtpSettings


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(getattr(exc, "reason", None) or exc)


def client_tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.mail_ssl_cafile is not None:
        try:
            context.load_verify_locations(cafile=str(settings.mail_ssl_cafile))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"MAIL_SSL_CAFILE={str(settings.mail_ssl_cafile)!r} cannot be loaded ({_reason(exc)}); "
                "set it to a readable PEM file of CA certificates",
                variable="MAIL_SSL_CAFILE",
            ) from exc
    if settings.mail_ssl_certfile is not None:
        keyfile = str(settings.mail_ssl_keyfile) if settings.mail_ssl_keyfile is not None else None
        variable = "MAIL_SSL_CERTFILE"
        if keyfile is not None and settings.mail_ssl_certfile.is_file() and not settings.mail_ssl_keyfile.is_file():
            variable = "MAIL_SSL_KEYFILE"
        try:
            # A password-protected key would make OpenSSL prompt on the terminal; refuse it instead.
            context.load_cert_chain(str(settings.mail_ssl_certfile), keyfile, password=lambda: b"")
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"{variable} cannot be loaded ({_reason(exc)}); set MAIL_SSL_CERTFILE to a readable PEM client "
                "certificate and MAIL_SSL_KEYFILE to its unencrypted private key (or put both in MAIL_SSL_CERTFILE)",
                variable=variable,
            ) from exc
    return context
