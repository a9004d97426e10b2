"""What every backend delivers: a ``RenderedMessage``, the envelope plus the bytes, rendered once.

Two ways lead here: ``compose`` (a validated ``MessageRequest``: from the HTTP API, the CLI, or a library
message object turned into one, ``mail_gateway.mail.objects``) and ``render_raw`` (bytes a client built itself:
the raw route, the SMTP ingress). Backends only ever see the result, so header errors surface the same way
in the memory backend as over SMTP, and a message is serialised once however many times it is retried.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import formatdate, make_msgid

from mail_gateway.errors import InvalidMessageError
from mail_gateway.mail.addresses import address_domain, envelope_address, unique_recipients
from mail_gateway.mail.nesting import TOO_DEEP, too_deep
from mail_gateway.mail.rfc5322 import first_long_line, long_line_message, parsed_date


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    message_id: str
    envelope_from: str
    recipients: tuple[str, ...]
    data: bytes  # RFC 5322 bytes with CRLF line endings


_date_cache: tuple[int, str] = (0, "")


def message_date(at: float | None = None) -> str:
    """``at`` (seconds since the epoch; now by default), with the local offset (``+0000`` on a UTC host):
    ``formatdate()``'s default ``-0000`` means the zone is unknown (RFC 5322 3.3), which some clients show as a
    warning."""
    global _date_cache
    if at is not None:
        return formatdate(at, localtime=True)
    # A Date has whole seconds, and formatting one costs more than the rest of a small message's headers.
    second = int(time.time())
    if _date_cache[0] != second:
        _date_cache = (second, formatdate(second, localtime=True))
    return _date_cache[1]


def new_message_id(domain: str) -> str:
    return make_msgid(domain=domain)


def stamp(envelope_from: str, message_id: str | None = None, date: str | None = None) -> tuple[str, str]:
    """The Message-ID and Date a message goes out with: the ones its caller set, else new ones (the Message-ID
    in the envelope sender's domain). Every message the gateway builds or completes is stamped here."""
    if message_id is None:
        message_id = new_message_id(address_domain(envelope_from) if envelope_from else "localhost")
    return message_id, date if date is not None else message_date()


# A Message-ID as the log, the response and the ingress's reply may show it: one <...> token of printable
# ASCII. Anything else (a continuation line carrying a forged log record, say) is treated as no Message-ID.
_MESSAGE_ID_TOKEN = re.compile(rb"<[\x21-\x3b\x3d\x3f-\x7e]+>")


_HEADER_END = re.compile(rb"\n\r?\n")


def header_fields(data: bytes) -> tuple[list[bytes], memoryview]:
    """The header block's fields (each with its continuation lines and line endings) and the rest of the
    message, from the empty line that ends the header block on. Only the header block is split into lines, and
    the rest is a view of ``data``: a copy would double a large message for a glance at its header."""
    if data.startswith((b"\r\n", b"\n")):
        return [], memoryview(data)
    end = _HEADER_END.search(data)
    split = len(data) if end is None else end.start() + 1
    # A field's lines are joined once: adding each continuation line to the field made so far copied it again
    # for every line, and a field of a million short ones (4 MB) took minutes.
    fields: list[list[bytes]] = []
    for line in data[:split].splitlines(keepends=True):  # bytes split on CR, LF and CRLF only
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    return [b"".join(lines) for lines in fields], memoryview(data)[split:]


def _field_name(field: bytes) -> bytes:
    return field.partition(b":")[0].strip().lower()


def is_message_id(text: str) -> bool:
    """Whether ``text`` is one ``<...>`` token of printable ASCII, the form ``message_id_of`` reads back."""
    return text.isascii() and _MESSAGE_ID_TOKEN.fullmatch(text.encode()) is not None


def checked_message_id(value: str, field: str) -> str:
    """A caller's Message-ID, written as given: ``InvalidMessageError`` naming ``field`` unless it is one ``<...>``
    token (``is_message_id``), since anything else is a Message-ID no reader can use."""
    if not is_message_id(value):
        raise InvalidMessageError(f"{field} {value!r} is not a Message-ID: give one <...> token of printable ASCII "
                                  "without spaces, such as email.utils.make_msgid() makes", field=field)
    return value


def checked_date(value: str, field: str) -> str:
    """A caller's Date, written as given: ``InvalidMessageError`` naming ``field`` unless it reads as an RFC 5322
    date (RFC 5322 3.6.1 requires one, and readers sort and thread by it)."""
    if not (value.isascii() and parsed_date(value) is not None):
        raise InvalidMessageError(f"{field} {value!r} is not a date as RFC 5322 writes one; give one such as "
                                  "email.utils.formatdate(localtime=True) makes", field=field)
    return value


def _token_or_nothing(message_id: str) -> str:
    return message_id if is_message_id(message_id) else ""


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

    Each recipient mailbox gets one ``RCPT TO``; an envelope domain without an IDNA 2008 form is refused (the
    SMTP backend encodes the others on the wire). ``Bcc:`` fields stay: the message pipeline removes them, on
    every way in (``mail_gateway.sending.pipeline``). With
    ``add_missing``, a Message-ID and a Date are prepended when the header block lacks them (RFC 5322
    requires a Date; the caller is told the Message-ID). A line over 998 octets is refused (RFC 5322 2.1.1), and so
    are MIME parts nested more than ``MAX_MIME_DEPTH`` deep (``mail_gateway.mail.nesting``).
    """
    if envelope_from:
        envelope_address(envelope_from)
    recipients = unique_recipients(list(recipients))
    if not recipients:
        raise InvalidMessageError("the message has no recipients", field="rcpt_to")
    long_line = first_long_line(data)
    if long_line is not None:
        raise InvalidMessageError(long_line_message(long_line), field="data")
    if too_deep(data):
        raise InvalidMessageError(TOO_DEEP, field="data")
    fields, _ = header_fields(data)
    message_id = message_id_of(fields)
    if add_missing:
        names = {_field_name(f) for f in fields}
        missing = [name for name in (b"message-id", b"date") if name not in names]
        if missing:
            new_id, date = stamp(envelope_from)
            added = b""
            if b"message-id" in missing:
                message_id = new_id
                added = b"Message-ID: " + new_id.encode("ascii") + b"\r\n"
            added += b"Date: " + date.encode("ascii") + b"\r\n" if b"date" in missing else b""
            data = added + data
    return RenderedMessage(message_id, envelope_from, recipients, data)
