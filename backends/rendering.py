"""Turn a flask-mailman message into what goes on the wire: envelope plus bytes, rendered once.

Every backend delivers ``RenderedMessage`` objects, so header errors surface the same way in the memory
backend as over SMTP, and a message is serialised once however many times it is retried.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import formatdate, make_msgid, parseaddr
from functools import lru_cache

from flask_mailman import EmailMessage
from flask_mailman.message import BadHeaderError

from backends.errors import InvalidMessageError
from backends.serialize import wire_chunks, with_lean_attachments


def message_date() -> str:
    """Now, with the local offset (``+0000`` on a UTC host): ``formatdate()``'s default ``-0000`` means the
    zone is unknown (RFC 5322 3.3), which some clients show as a warning."""
    return formatdate(localtime=True)


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    message_id: str
    envelope_from: str
    recipients: tuple[str, ...]
    data: bytes  # RFC 5322 bytes with CRLF line endings


@lru_cache(maxsize=4096)  # pure, and called for every address of every message rendered
def addr_spec(address: str) -> str:
    """``'Name <a@x.org>'`` -> ``'a@x.org'``."""
    if "\r" in address or "\n" in address:
        raise InvalidMessageError(f"address {address!r} contains a line break", field="address")
    _, spec = parseaddr(address)
    if "@" not in spec:
        raise InvalidMessageError(f"{address!r} is not an email address", field="address")
    return spec


def _msgid_domain(envelope_from: str) -> str:
    domain = envelope_from.rpartition("@")[2]
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return "localhost"


def render_message(message: EmailMessage) -> RenderedMessage:
    """Render ``message`` for delivery; raise ``InvalidMessageError`` if it cannot be sent.

    A message without a Message-ID gets one here, stored on the message itself, so the ID reported to the
    caller is the one on the wire and a resend of the same object keeps it. Doing it here also spares
    flask-mailman's default, which asks DNS for the host's FQDN. Date and charset are filled in here too,
    because flask-mailman would otherwise read them from the current Flask application, and backends
    also run outside one (the CLI, the SMTP ingress, library use).
    """
    if not message.from_email:
        raise InvalidMessageError("the message has no sender", field="from")
    envelope_from = addr_spec(str(message.from_email))
    recipients = tuple(dict.fromkeys(addr_spec(str(r)) for r in message.recipients()))
    if not recipients:
        raise InvalidMessageError("the message has no recipients", field="to")
    present = {name.lower() for name in message.extra_headers}
    if "message-id" not in present:
        message.extra_headers["Message-ID"] = make_msgid(domain=_msgid_domain(envelope_from))
    if "date" not in present:
        message.extra_headers["Date"] = message_date()
    message.encoding = message.encoding or "utf-8"
    try:
        mime = with_lean_attachments(message).message()
        message_id = str(mime["Message-ID"])
        chunks = wire_chunks(mime)
    except (BadHeaderError, ValueError, UnicodeError) as exc:
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
            domain = _msgid_domain(envelope_from) if envelope_from else "localhost"
            message_id = make_msgid(domain=domain)
            added += b"Message-ID: " + message_id.encode("ascii") + b"\r\n"
        if not _DATE.search(header_block):
            added += b"Date: " + message_date().encode("ascii") + b"\r\n"
        data = added + data
    return RenderedMessage(message_id, envelope_from, tuple(recipients), data)
