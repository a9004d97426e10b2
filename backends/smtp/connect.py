"""Open an SMTP connection ready for mail: connect, EHLO, STARTTLS and login, each failure translated.

A connection whose set-up failed is closed here and never handed out, so it can never be reused.
"""

from __future__ import annotations

import functools
import smtplib
import socket
import ssl
from typing import Any

from mail_gateway.backends.smtp.replies import ReplyReading
from mail_gateway.backends.smtp.transaction import delivery_error, reply_text
from mail_gateway.errors import ConnectionSetupError, DeliveryError, PermanentDeliveryError
from mail_gateway.settings.mail_url import Upstream

# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH: trusted, but issued for another name.
_NAME_MISMATCH = (62, 64)


class VerifiedSMTP_SSL(ReplyReading, smtplib.SMTP_SSL):
    # smtplib leaves the plain socket open when the TLS handshake fails (an untrusted certificate, say);
    # wrapping it here closes it on that path too.
    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:  # type: ignore[override]
        raw = socket.create_connection((host, port), timeout, self.source_address)
        try:
            return self.context.wrap_socket(raw, server_hostname=self._host)
        except BaseException:
            raw.close()
            raise


@functools.cache
def local_hostname() -> str:
    # smtplib would ask DNS for this on every connection; once per process is enough.
    return socket.getfqdn()


def connect(upstream: Upstream, timeout: float, context: ssl.SSLContext | None,
            found: dict[str, Any] | None = None) -> smtplib.SMTP:
    """Connect, say EHLO, STARTTLS and log in as configured; the result is ready for a transaction.

    ``found`` collects what the server showed on the way (banner, extensions, TLS, login), for
    ``mail-gateway check``.
    """
    found = found if found is not None else {}
    name = upstream.name
    if upstream.security == "ssl":
        conn: smtplib.SMTP = VerifiedSMTP_SSL(local_hostname=local_hostname(), timeout=timeout, context=context)
    else:
        conn = ReplyReading(local_hostname=local_hostname(), timeout=timeout)
    conn._host = upstream.host  # smtplib verifies the certificate against this name (STARTTLS and SMTPS)
    try:
        code, banner = conn.connect(upstream.host, upstream.port)
        found["banner"] = f"{code} {reply_text(banner)}"
        if code != 220:
            kind = ConnectionSetupError if 400 <= code < 500 else PermanentDeliveryError
            raise delivery_error(kind, f"refused the connection: {code} {reply_text(banner)}", name, code, banner,
                                 client_detail="The upstream refused the connection.")
        _note_tls(conn, found)
        conn.ehlo_or_helo_if_needed()
        found["extensions"] = dict(conn.esmtp_features)
        if upstream.security == "starttls":
            conn.starttls(context=context)
            _note_tls(conn, found)
            conn.ehlo()
            found["extensions_after_tls"] = dict(conn.esmtp_features)
        if upstream.username:
            password = upstream.password.get_secret_value() if upstream.password else ""
            found["login"] = f"failed for user {upstream.username!r}"
            conn.login(upstream.username, password)
            found["login"] = f"accepted for user {upstream.username!r}"
    except BaseException as exc:
        conn.close()  # a connection whose set-up, STARTTLS or login failed is never reused
        if isinstance(exc, DeliveryError):
            raise
        raise _translate_setup_error(exc, upstream) from exc
    return conn


def _note_tls(conn: smtplib.SMTP, found: dict[str, Any]) -> None:
    if isinstance(conn.sock, ssl.SSLSocket):
        found["tls_version"] = conn.sock.version()
        subject = conn.sock.getpeercert().get("subject", ())
        found["certificate_subject"] = ", ".join(f"{k}={v}" for rdn in subject for k, v in rdn)


def _translate_setup_error(exc: BaseException, upstream: Upstream) -> BaseException:
    # Each error's client_detail names the cause but never the upstream's host, port or login (the log has them).
    name = upstream.name
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        detail = f"refused the login of user {upstream.username!r}: {exc.smtp_code} {reply_text(exc.smtp_error)}"
        return delivery_error(PermanentDeliveryError, detail, name, exc.smtp_code, exc.smtp_error,
                              client_detail="The upstream refused the gateway's login.")
    if isinstance(exc, smtplib.SMTPNotSupportedError):  # smtplib's for a missing STARTTLS and a missing AUTH alike
        missing = "AUTH, which the gateway needs to log in" if "AUTH" in str(exc) else \
            "STARTTLS, which the gateway requires"
        return delivery_error(PermanentDeliveryError, f"{exc} (refusing to continue without it)", name,
                              client_detail=f"The upstream does not offer {missing}.")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return delivery_error(PermanentDeliveryError, _untrusted(exc), name,
                              client_detail="The upstream's TLS certificate not trusted: it could not be verified.")
    if isinstance(exc, ssl.SSLError):
        return delivery_error(PermanentDeliveryError, f"TLS handshake failed: {exc.reason}", name,
                              client_detail="The TLS handshake with the upstream failed.")
    if isinstance(exc, smtplib.SMTPResponseException):
        kind = ConnectionSetupError if 400 <= exc.smtp_code < 500 else PermanentDeliveryError
        return delivery_error(kind, f"{exc.smtp_code} {reply_text(exc.smtp_error)}", name, exc.smtp_code,
                              exc.smtp_error, client_detail="The upstream refused the session.")
    if isinstance(exc, (OSError, smtplib.SMTPException)):
        return delivery_error(ConnectionSetupError, f"could not connect: {exc or type(exc).__name__}", name,
                              client_detail="The gateway could not connect to the upstream.")
    return exc


def _untrusted(exc: ssl.SSLCertVerificationError) -> str:
    """Why the certificate was not trusted and what the operator sets so the next attempt verifies (for the log
    and ``check``; clients are told less)."""
    reason = f"TLS certificate not trusted: {exc.verify_message.rstrip('.')}"
    if exc.verify_code in _NAME_MISMATCH:
        return f"{reason}; connect to a host name the certificate names (MAIL_SERVER or MAIL_URL)"
    return (f"{reason}; set MAIL_SSL_CAFILE to a PEM file of the CA that signed it (for a self-signed certificate, "
            "the certificate itself)")
