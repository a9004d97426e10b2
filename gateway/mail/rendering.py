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
from email.utils import formatdate, make_msgid
from typing import Any

from mail_gateway.errors import InvalidMessageError
from mail_gateway.mail.addresses import addr_spec, address_domain
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
    envelope_from = addr_spec(str(message.from_email))
    recipients = tuple(dict.fromkeys(addr_spec(str(r)) for r in message.recipients()))
    if not recipients:
        raise InvalidMessageError("the message has no recipients", field="to")
    message = copy.copy(message)
    message.extra_headers = dict(message.extra_headers)
    present = {name.lower() for name in message.extra_headers}
    if "message-id" not in present:
        message.extra_headers["Message-ID"] = new_message_id(address_domain(envelope_from))
    if "date" not in present:
        message.extra_headers["Date"] = message_date()
    message.encoding = message.encoding or "utf-8"
    try:
        mime = with_lean_attachments(message).message()
        message_id = str(mime["Message-ID"])
        chunks = wire_chunks(mime)
    except (ValueError, UnicodeError) as exc:  # flask-mailman's BadHeaderError is a ValueError
        raise InvalidMessageError(f"the message cannot be rendered: {exc}") from exc
    del mime  # a large attachment's base64 text goes before the chunks are joined, not after
    return RenderedMessage(message_id, envelope_from, recipients, b"".join(chunks))


_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID = re.compile(rb"(?im)^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)")
_DATE = re.compile(rb"(?im)^date:")


def render_raw(
    envelope_from: str, recipients: Sequence[str], data: bytes, *, add_missing: bool = True
) -> RenderedMessage:
    """Wrap a message its sender built (the raw HTTP route, the SMTP ingress) without re-serialising it.

    With ``add_missing``, a Message-ID and a Date are prepended when the header block lacks them (RFC 5322
    requires a Date; the caller is told the Message-ID); the rest of the bytes are left exactly as given.
    Without it the bytes are untouched and a message without a Message-ID is reported under ``""``.
    """
    if not recipients:
        raise InvalidMessageError("the message has no recipients", field="rcpt_to")
    end = _HEADER_END.search(data)
    header_block = data[: end.start()] if end else data
    found = _MESSAGE_ID.search(header_block)
    message_id = found.group(1).strip().decode("ascii", "replace") if found else ""
    if add_missing:
        added = b""
        if not message_id:
            message_id = new_message_id(address_domain(envelope_from) if envelope_from else "localhost")
            added += b"Message-ID: " + message_id.encode("ascii") + b"\r\n"
        if not _DATE.search(header_block):
            added += b"Date: " + message_date().encode("ascii") + b"\r\n"
        data = added + data
    return RenderedMessage(message_id, envelope_from, tuple(recipients), data)
