"""One SMTP connection: open it safely, run one mail transaction on it, and translate every failure.

smtplib speaks the protocol; this module decides what each failure means for the caller (transient,
permanent or unknown) and keeps the socket closed on every error path.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from typing import TYPE_CHECKING

from backends.addresses import envelope_address
from backends.errors import (
    DeliveryError,
    DeliveryOutcomeUnknownError,
    PermanentDeliveryError,
    RecipientsRefusedError,
    TransientDeliveryError,
)
from backends.rendering import RenderedMessage
from backends.result import RecipientResult, SendResult

if TYPE_CHECKING:
    from settings import GatewaySettings

BACKEND = "smtp"
_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")


class VerifiedSMTP_SSL(smtplib.SMTP_SSL):
    # smtplib leaves the plain socket open when the TLS handshake fails (an untrusted certificate, say);
    # wrapping it here closes it on that path too.
    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:  # type: ignore[override]
        raw = socket.create_connection((host, port), timeout, self.source_address)
        try:
            return self.context.wrap_socket(raw, server_hostname=self._host)
        except BaseException:
            raw.close()
            raise


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def error_for_code(code: int) -> type[DeliveryError]:
    return TransientDeliveryError if 400 <= code < 500 else PermanentDeliveryError


def _fail(kind: type[DeliveryError], detail: str, upstream: str, code: int | None = None, **kw) -> DeliveryError:
    return kind(f"{upstream}: {detail}", backend=BACKEND, smtp_code=code, upstream=upstream, **kw)


def tls_context(settings: GatewaySettings) -> ssl.SSLContext:
    """A context that verifies the server's certificate and host name (Python's defaults)."""
    return ssl.create_default_context()


def connect(settings: GatewaySettings, context: ssl.SSLContext | None) -> smtplib.SMTP:
    """Connect, say EHLO, STARTTLS and log in as configured; the result is ready for a transaction."""
    host, port, timeout = settings.smtp_host, settings.mail_port, settings.mail_timeout
    upstream = f"{host}:{port}"
    try:
        if settings.mail_use_ssl:
            conn: smtplib.SMTP = VerifiedSMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            conn = smtplib.SMTP(host, port, timeout=timeout)
    except smtplib.SMTPConnectError as exc:
        raise _fail(error_for_code(exc.smtp_code), f"refused the connection: {exc.smtp_code} "
                    f"{_text(exc.smtp_error)}", upstream, exc.smtp_code) from exc
    except ssl.SSLCertVerificationError as exc:
        raise _fail(PermanentDeliveryError, f"TLS certificate not trusted: {exc.verify_message}", upstream) from exc
    except ssl.SSLError as exc:
        raise _fail(PermanentDeliveryError, f"TLS handshake failed: {exc.reason}", upstream) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise _fail(TransientDeliveryError, f"could not connect: {exc}", upstream) from exc
    try:
        conn.ehlo_or_helo_if_needed()
        if settings.mail_use_tls:
            conn.starttls(context=context)
            conn.ehlo()
        if settings.mail_username:
            password = settings.mail_password.get_secret_value() if settings.mail_password else ""
            conn.login(settings.mail_username, password)
    except BaseException as exc:
        conn.close()  # a connection whose STARTTLS or login failed is never reused
        raise _translate_setup_error(exc, settings, upstream) from exc
    return conn


def _translate_setup_error(exc: BaseException, settings: GatewaySettings, upstream: str) -> BaseException:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return _fail(PermanentDeliveryError, f"refused the login of user {settings.mail_username!r}: "
                     f"{exc.smtp_code} {_text(exc.smtp_error)}", upstream, exc.smtp_code)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return _fail(PermanentDeliveryError, f"{exc} (refusing to continue without it)", upstream)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _fail(PermanentDeliveryError, f"TLS certificate not trusted: {exc.verify_message}", upstream)
    if isinstance(exc, ssl.SSLError):
        return _fail(PermanentDeliveryError, f"TLS handshake failed: {exc.reason}", upstream)
    if isinstance(exc, smtplib.SMTPResponseException):
        return _fail(error_for_code(exc.smtp_code), f"{exc.smtp_code} {_text(exc.smtp_error)}", upstream,
                     exc.smtp_code)
    if isinstance(exc, (OSError, smtplib.SMTPException)):
        return _fail(TransientDeliveryError, f"connection failed during set-up: {exc}", upstream)
    return exc


def wire_data(data: bytes) -> bytes:
    """CRLF line endings, leading dots doubled, and the terminating ``.`` line (RFC 5321 4.5.2).

    Written here rather than via ``smtplib.SMTP.data`` because the gateway must tell a failure before the
    final dot (safe to retry) from a lost reply after it (the server may have the message).
    """
    data = _LEADING_DOT.sub(b"..", _LINE_ENDINGS.sub(b"\r\n", data))
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def reset(conn: smtplib.SMTP) -> None:
    """Abort the transaction; a connection that cannot even do that is closed."""
    try:
        conn.rset()
    except (smtplib.SMTPException, OSError):
        conn.close()


def is_usable(conn: smtplib.SMTP) -> bool:
    return conn.sock is not None


def send_transaction(conn: smtplib.SMTP, message: RenderedMessage, upstream: str) -> SendResult:
    """MAIL, RCPT for each recipient, DATA; raise unless at least one recipient accepted the message."""
    ids = {"message_id": message.message_id}
    try:
        code, reply = conn.mail(envelope_address(message.envelope_from))
        if code != 250:
            reset(conn)
            raise _fail(error_for_code(code), f"refused the sender: {code} {_text(reply)}", upstream, code, **ids)
        results: list[RecipientResult] = []
        for recipient in message.recipients:
            code, reply = conn.rcpt(envelope_address(recipient))
            if code in (250, 251):
                results.append(RecipientResult(recipient, "accepted"))
            else:
                status = "deferred" if 400 <= code < 500 else "rejected"
                results.append(RecipientResult(recipient, status, code, _text(reply)))
        if not any(r.status == "accepted" for r in results):
            reset(conn)
            kind = TransientDeliveryError if any(r.status == "deferred" for r in results) else RecipientsRefusedError
            raise _fail(kind, "refused every recipient", upstream, results[0].code, recipients=results, **ids)
        code, reply = conn.docmd("DATA")
        if code != 354:
            reset(conn)
            raise _fail(error_for_code(code), f"refused DATA: {code} {_text(reply)}", upstream, code, **ids)
        conn.send(wire_data(message.data))
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        conn.close()
        raise _fail(TransientDeliveryError, f"connection lost before the message was sent: {exc}",
                    upstream, **ids) from exc
    try:
        code, reply = conn.getreply()
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        conn.close()
        raise _fail(DeliveryOutcomeUnknownError, "connection lost after the message was sent and before the "
                    "server answered; it may have been delivered, so it was not sent again", upstream,
                    **ids) from exc
    if code != 250:
        raise _fail(error_for_code(code), f"refused the message: {code} {_text(reply)}", upstream, code, **ids)
    return SendResult(message.message_id, BACKEND, tuple(results))


def quit_quietly(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        conn.close()
