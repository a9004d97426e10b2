"""What every backend delivers: a ``RenderedMessage``, the envelope plus the bytes, rendered once.

Three ways lead here: ``compose`` (a validated ``MessageRequest``), ``render_email`` (a flask-mailman or Django-style
message object a library user built) and ``render_raw`` (bytes a client built itself: the raw route, the
SMTP ingress). Backends only ever see the result, so header errors surface the same way in the memory
backend as over SMTP, and a message is serialised once however many times it is retried.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.errors import MessageError
from email.utils import formataddr, formatdate, make_msgid
from typing import Any

from mail_gateway.errors import HeaderInjectionError, InvalidMessageError
from mail_gateway.mail.addresses import (
    address_domain,
    envelope_address,
    header_addresses,
    mailbox,
    unique_recipients,
)
from mail_gateway.mail.rfc5322 import check_header_text, first_long_line, long_line_message
from mail_gateway.mail.serialize import wire_chunks, with_lean_attachments


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    message_id: str
    envelope_from: str
    recipients: tuple[str, ...]
    data: bytes  # RFC 5322 bytes with CRLF line endings


_date_cache: tuple[int, str] = (0, "")


def message_date() -> str:
    """Now, with the local offset (``+0000`` on a UTC host): ``formatdate()``'s default ``-0000`` means the
    zone is unknown (RFC 5322 3.3), which some clients show as a warning."""
    global _date_cache
    # A Date has whole seconds, and formatting one costs more than the rest of a small message's headers.
    second = int(time.time())
    if _date_cache[0] != second:
        _date_cache = (second, formatdate(second, localtime=True))
    return _date_cache[1]


def new_message_id(domain: str) -> str:
    return make_msgid(domain=domain)


def _ascii_domains(value: str, field: str) -> str:
    """An address with its domain in IDNA 2008 A-labels, so flask-mailman's own IDNA 2003 encoding (which
    maps ``faß.de`` to ``fass.de``) has nothing left to encode."""
    name, spec = mailbox(value, field)
    ascii_spec = envelope_address(spec)
    return formataddr((name, ascii_spec)) if name else ascii_spec


def _ascii_address_list(value: str, field: str) -> str:
    found = header_addresses(value)
    if not found:
        raise InvalidMessageError(f"{value!r} is not a list of email addresses", field=field)
    return ", ".join(_ascii_domains(formataddr(pair), field) for pair in found)


def _checked_copy(message: Any) -> Any:
    """A copy of ``message`` whose header fields are checked (no control characters: header injection) and
    whose addresses carry ASCII domains; the caller's object stays as it was."""
    message = copy.copy(message)
    message.from_email = _ascii_domains(str(message.from_email), "from")
    for field in ("to", "cc", "bcc", "reply_to"):
        setattr(message, field, [_ascii_domains(str(a), field) for a in getattr(message, field) or []])
    headers = {}
    for name, value in dict(message.extra_headers).items():
        try:
            check_header_text(str(name) + str(value))
        except ValueError as exc:
            raise HeaderInjectionError(f"header {name!r} {exc}", field=f"headers.{name}") from exc
        lower = str(name).lower()
        if lower in ("from", "to", "cc", "reply-to"):
            value = _ascii_address_list(str(value), f"headers.{name}")
        if lower not in ("bcc", "resent-bcc"):  # blind copies are never written into the message
            headers[name] = value
    message.extra_headers = headers
    try:
        check_header_text(str(message.subject or ""))
    except ValueError as exc:
        raise HeaderInjectionError(f"the subject {exc}", field="subject") from exc
    return message


def render_email(message: Any) -> RenderedMessage:
    """Render a flask-mailman (or Django-style) ``EmailMessage``; raise ``InvalidMessageError`` if it cannot
    be sent.

    Each call is its own message: a Message-ID and Date are generated unless the caller set them, and they go
    on a copy, so the caller's object and its ``extra_headers`` stay as they were. The charset is set too,
    because flask-mailman would otherwise read it from the current Flask application, and backends also run
    outside one (the CLI, the SMTP ingress, a queue worker).
    """
    if not message.from_email:
        raise InvalidMessageError("the message has no sender", field="from")
    # The envelope as the caller wrote it (the SMTP backend IDNA-encodes it on the wire); the headers get
    # A-label domains from _checked_copy.
    envelope_from = mailbox(str(message.from_email), "from")[1]
    envelope_address(envelope_from)  # a domain without an IDNA 2008 form is refused here, not at the upstream
    recipients = unique_recipients([mailbox(str(r), "to")[1] for r in message.recipients()])
    message = _checked_copy(message)
    if not recipients:
        raise InvalidMessageError("the message has no recipients", field="to")
    present = {name.lower() for name in message.extra_headers}
    if "message-id" not in present:
        message.extra_headers["Message-ID"] = new_message_id(address_domain(envelope_from))
    if "date" not in present:
        message.extra_headers["Date"] = message_date()
    message.encoding = message.encoding or "utf-8"
    try:
        mime = with_lean_attachments(message).message()
        message_id = _token_or_nothing(str(mime["Message-ID"]).strip())
        chunks = wire_chunks(mime)
    except (ValueError, UnicodeError, MessageError) as exc:  # flask-mailman's BadHeaderError is a ValueError
        raise InvalidMessageError(f"the message cannot be rendered: {exc}") from exc
    del mime  # a large attachment's base64 text goes before the chunks are joined, not after
    data = b"".join(chunks)
    long_line = first_long_line(data)
    if long_line is not None:
        raise InvalidMessageError(f"the message cannot be sent: {long_line_message(long_line)}")
    return RenderedMessage(message_id, envelope_from, recipients, data)


# A Message-ID as the log, the response and the ingress's reply may show it: one <...> token of printable
# ASCII. Anything else (a continuation line carrying a forged log record, say) is treated as no Message-ID.
_MESSAGE_ID_TOKEN = re.compile(rb"<[\x21-\x3b\x3d\x3f-\x7e]+>")
_BLIND_COPY = (b"bcc", b"resent-bcc")


_HEADER_END = re.compile(rb"\n\r?\n")


def header_fields(data: bytes) -> tuple[list[bytes], memoryview]:
    """The header block's fields (each with its continuation lines and line endings) and the rest of the
    message, from the empty line that ends the header block on. Only the header block is split into lines, and
    the rest is a view of ``data``: a copy would double a large message for a glance at its header."""
    if data.startswith((b"\r\n", b"\n")):
        return [], memoryview(data)
    end = _HEADER_END.search(data)
    split = len(data) if end is None else end.start() + 1
    fields: list[bytes] = []
    for line in data[:split].splitlines(keepends=True):  # bytes split on CR, LF and CRLF only
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields, memoryview(data)[split:]


def _field_name(field: bytes) -> bytes:
    return field.partition(b":")[0].strip().lower()


def _token_or_nothing(message_id: str) -> str:
    return message_id if message_id.isascii() and _MESSAGE_ID_TOKEN.fullmatch(message_id.encode()) else ""


def message_id_of(fields: list[bytes]) -> str:
    """The message's Message-ID when it has exactly one and that is one ``<...>`` token; else ``""``."""
    values = [f.partition(b":")[2] for f in fields if _field_name(f) == b"message-id"]
    if len(values) != 1:
        return ""
    value = re.sub(rb"[\r\n]", b"", values[0]).strip(b" \t")
    return value.decode("ascii") if _MESSAGE_ID_TOKEN.fullmatch(value) else ""


def render_raw(
    envelope_from: str, recipients: Sequence[str], data: bytes, *, add_missing: bool = True
) -> RenderedMessage:
    """Wrap a message its sender built (the raw HTTP route, the SMTP ingress) without re-serialising it.

    ``Bcc:`` and ``Resent-Bcc:`` fields are removed (as Postfix's cleanup does: every recipient would see the
    blind copies), and each recipient mailbox gets one ``RCPT TO``; an envelope domain without an IDNA 2008 form
    is refused (the SMTP backend encodes the others on the wire). With
    ``add_missing``, a Message-ID and a Date are prepended when the header block lacks them (RFC 5322
    requires a Date; the caller is told the Message-ID). A line over 998 octets is refused (RFC 5322 2.1.1).
    """
    if envelope_from:
        envelope_address(envelope_from)
    recipients = unique_recipients(list(recipients))
    if not recipients:
        raise InvalidMessageError("the message has no recipients", field="rcpt_to")
    long_line = first_long_line(data)
    if long_line is not None:
        raise InvalidMessageError(long_line_message(long_line), field="data")
    fields, rest = header_fields(data)
    kept = [f for f in fields if _field_name(f) not in _BLIND_COPY]
    if len(kept) != len(fields):
        data = b"".join(kept) + rest
    message_id = message_id_of(kept)
    if add_missing:
        names = {_field_name(f) for f in kept}
        added = b""
        if b"message-id" not in names:
            message_id = new_message_id(address_domain(envelope_from) if envelope_from else "localhost")
            added += b"Message-ID: " + message_id.encode("ascii") + b"\r\n"
        if b"date" not in names:
            added += b"Date: " + message_date().encode("ascii") + b"\r\n"
        data = added + data
    return RenderedMessage(message_id, envelope_from, recipients, data)
