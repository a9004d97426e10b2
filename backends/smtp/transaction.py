"""One mail transaction on an open SMTP connection, and what each failure means for the caller.

smtplib speaks the protocol; this module decides what each failure means for the caller (transient,
permanent or unknown) and keeps the socket closed on every error path.
"""

from __future__ import annotations

import re
import smtplib

from mail_gateway.backends.smtp.extensions import envelope, prepared
from mail_gateway.backends.smtp.replies import send_all
from mail_gateway.errors import (
    DeliveryError,
    DeliveryOutcomeUnknownError,
    MessageTooLargeError,
    PermanentDeliveryError,
    RecipientsRefusedError,
    TransientDeliveryError,
)
from mail_gateway.mail.rendering import RenderedMessage
from mail_gateway.mail.result import RecipientResult, SendResult

BACKEND = "smtp"
_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")
_SEPARATE_SEND = 1 << 20  # bytes; below this the final dot goes in the same write as the message
_LEADING_DOT = re.compile(rb"(?m)^\.")


def reply_text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def error_for_code(code: int) -> type[DeliveryError]:
    return TransientDeliveryError if 400 <= code < 500 else PermanentDeliveryError


def delivery_error(kind: type[DeliveryError], detail: str, upstream: str, code: int | None = None,
                   text: bytes | str | None = None, **kw) -> DeliveryError:
    """An error whose message names the upstream (for the log); ``text`` is the upstream's reply to ``code``."""
    return kind(f"{upstream}: {detail}", backend=BACKEND, smtp_code=code, upstream=upstream,
                smtp_text=None if text is None else reply_text(text).strip(), **kw)


def wire_data(data: bytes) -> tuple[bytes, ...]:
    """The DATA payload: CRLF line endings, leading dots doubled, and the terminating ``.`` line
    (RFC 5321 4.5.2), as chunks to send one after another.

    Written here rather than via ``smtplib.SMTP.data`` because the gateway must tell a failure before the
    final dot (safe to retry) from a lost reply after it (the server may have the message). Rendered
    messages already have CRLF endings and usually no leading dots, so the bytes are checked first and
    copied only when they need rewriting: a 20 MB attachment is not duplicated to send it.
    """
    crlf = data.count(b"\r\n")
    if not (data.count(b"\r") == crlf == data.count(b"\n") and b"\n." not in data and not data.startswith(b".")):
        data = _LEADING_DOT.sub(b"..", _LINE_ENDINGS.sub(b"\r\n", data))
    ending = b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"
    if len(data) < _SEPARATE_SEND:
        # One write: a separate small write of the final dot could wait on Nagle's algorithm for the
        # server's delayed ACK.
        return (data + ending,)
    return data, ending


def reset(conn: smtplib.SMTP) -> None:
    """Abort the transaction; a connection that cannot even do that is closed, so it is not reused."""
    try:
        code, _ = conn.rset()
    except (smtplib.SMTPException, OSError):
        code = 0
    if code != 250:
        conn.close()


def size_limit(conn: smtplib.SMTP) -> int | None:
    """The largest message the server said it accepts (EHLO SIZE), or None when it set no limit."""
    value = conn.esmtp_features.get("size", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def _checked_size(conn: smtplib.SMTP, message: RenderedMessage, wire: tuple[bytes, ...], upstream: str) -> int:
    size = sum(len(chunk) for chunk in wire)
    limit = size_limit(conn)
    if limit is not None and size > limit:
        detail = f"the message is {size} bytes and the upstream accepts at most {limit} (its SIZE); it was not sent"
        raise delivery_error(MessageTooLargeError, detail, upstream, message_id=message.message_id,
                             client_detail=detail[0].upper() + detail[1:] + ".")
    return size


def _refusal(conn: smtplib.SMTP, mail: Reply, results: list[RecipientResult], data: Reply | None,
             upstream: str, message_id: str) -> DeliveryError | None:
    """What refused the transaction before the message itself was sent (sender, every recipient, DATA)."""
    accepted = any(r.status == "accepted" for r in results)
    if data is not None and data[0] == 354 and (mail[0] != 250 or not accepted):
        # The server opened DATA for a transaction it had refused: hang up rather than send anything.
        conn.close()
    code, reply = mail
    if code != 250:
        return delivery_error(error_for_code(code), f"refused the sender: {code} {reply_text(reply)}", upstream,
                              code, reply, message_id=message_id, client_detail="The upstream refused the sender.",
                              smtp_command="MAIL")
    if not accepted:
        kind = TransientDeliveryError if any(r.status == "deferred" for r in results) else RecipientsRefusedError
        return delivery_error(kind, "refused every recipient", upstream, results[0].code, recipients=results,
                              message_id=message_id)
    assert data is not None
    code, reply = data
    if code != 354:
        return delivery_error(error_for_code(code), f"refused DATA: {code} {reply_text(reply)}", upstream, code,
                              reply, message_id=message_id, smtp_command="DATA")
    return None


def send_transaction(conn: smtplib.SMTP, message: RenderedMessage, upstream: str) -> SendResult:
    """MAIL, RCPT for each recipient, DATA; raise unless at least one recipient accepted the message."""
    ids = {"message_id": message.message_id}
    sender, recipients = envelope(message, upstream)
    data, extensions = prepared(conn, message, [sender, *recipients], upstream)
    wire = wire_data(data)
    size = _checked_size(conn, message, wire, upstream)
    mail_options = ([f"SIZE={size}"] if conn.has_extn("size") else []) + extensions
    try:
        exchange = _pipelined_commands if conn.has_extn("pipelining") else _one_command_at_a_time
        mail, rcpts, data = exchange(conn, sender, recipients, mail_options)
        # zip stops early on purpose: after a refused MAIL, no RCPT was sent one command at a time.
        results = [_recipient_result(a, reply) for a, reply in zip(message.recipients, rcpts, strict=False)]
        refusal = _refusal(conn, mail, results, data, upstream, message.message_id)
        if refusal is not None:
            reset(conn)
            raise refusal
        send_all(conn, wire)
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        conn.close()
        raise delivery_error(TransientDeliveryError, f"connection lost before the message was sent: "
                             f"{exc or type(exc).__name__}", upstream, **ids) from exc
    try:
        code, reply = conn.getreply()
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        # A lost connection, a timeout and an unreadable reply (the connection's ReplyReading closes it) alike: the
        # server may have stored the message, so the outcome is unknown, never a refusal.
        conn.close()
        raise delivery_error(DeliveryOutcomeUnknownError, "no readable answer after the message was sent "
                             f"({exc or type(exc).__name__}); it may have been delivered, so it was not sent again",
                             upstream, **ids) from exc
    if code != 250:
        raise delivery_error(error_for_code(code), f"refused the message: {code} {reply_text(reply)}", upstream, code,
                             reply, smtp_command="DATA", **ids)
    return SendResult(message.message_id, BACKEND, tuple(results), upstream=upstream)


Reply = tuple[int, bytes]


def _recipient_result(address: str, reply: Reply) -> RecipientResult:
    code, text = reply
    if code in (250, 251):
        return RecipientResult(address, "accepted")
    return RecipientResult(address, "deferred" if 400 <= code < 500 else "rejected", code, reply_text(text))


def _one_command_at_a_time(conn: smtplib.SMTP, sender: str, recipients: list[str],
                           options: list[str]) -> tuple[Reply, list[Reply], Reply | None]:
    mail = conn.mail(sender, options)
    if mail[0] != 250:
        return mail, [], None
    rcpts = [conn.rcpt(address) for address in recipients]
    if not any(code in (250, 251) for code, _ in rcpts):
        return mail, rcpts, None
    # smtplib's own spelling (SMTP.data() sends "data"): commands are case-insensitive, and tests that watch
    # smtplib's commands for it find the message after it.
    return mail, rcpts, conn.docmd("data")


def _pipelined_commands(conn: smtplib.SMTP, sender: str, recipients: list[str],
                        options: list[str]) -> tuple[Reply, list[Reply], Reply]:
    """RFC 2920: MAIL, every RCPT and DATA in one write, then their replies in order: one round trip
    instead of one per command. The message itself still waits for the 354 and a recipient's 250."""
    extra = "".join(f" {option}" for option in options)
    commands = [f"MAIL FROM:{smtplib.quoteaddr(sender)}{extra}"]
    commands += [f"RCPT TO:{smtplib.quoteaddr(address)}" for address in recipients]
    commands.append("DATA")
    conn.send("".join(f"{command}\r\n" for command in commands).encode("utf-8"))  # UTF-8: SMTPUTF8 addresses
    mail = conn.getreply()
    rcpts = [conn.getreply() for _ in recipients]
    return mail, rcpts, conn.getreply()


def noop_ok(conn: smtplib.SMTP) -> bool:
    """Whether the server still answers on this connection (closed when it does not)."""
    try:
        code, _ = conn.noop()
    except (smtplib.SMTPException, OSError):
        conn.close()
        return False
    if code != 250:
        conn.close()
    return code == 250


def quit_quietly(conn: smtplib.SMTP) -> None:
    try:
        if conn.sock is not None:
            conn.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        conn.close()
