"""The RFC 5322 rules every way in shares: which characters a header field may hold, and how long a line may be.

Mail parsers split header blocks on more than CR and LF: Python's ``str.splitlines`` (which the ``email``
package uses) and many clients also end a line at VT, FF, FS/GS/RS, NEL and the Unicode line and paragraph
separators, so one of those inside a display name or a subject ends the header block there and turns the rest
into the body. Every C0 control character but TAB (folding white space), DEL, the C1 controls and U+2028/U+2029
are therefore refused in anything that becomes a header.
"""

from __future__ import annotations

import email
import re
from datetime import UTC, datetime
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.utils import parsedate_to_datetime

# C0 controls except TAB, DEL, C1 controls (NEL among them), LINE SEPARATOR and PARAGRAPH SEPARATOR.
FORBIDDEN_IN_HEADERS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
MAX_LINE_OCTETS = 998  # RFC 5322 2.1.1: each line MUST be at most 998 octets, excluding the CRLF
# What the standard library's header parsers raise for a field they cannot read, besides the ValueError they
# document: HeaderParseError and CharsetError (MessageErrors); AttributeError, TypeError, IndexError and
# UnboundLocalError (a NameError) from fields that trip the parser itself ("From: :];[@;a;"); RecursionError for
# comments nested within each other past the interpreter's limit; OverflowError for a Date whose year or zone
# has more digits than a C integer holds. Any of them, let through, took the outbox list down for every message.
PARSER_FAILURES = (MessageError, ValueError, LookupError, AttributeError, TypeError, NameError, RecursionError,
                   OverflowError)


def check_header_text(value: str) -> str:
    """``value`` unchanged, or ``ValueError`` naming the first character that no header field may hold."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # JSON can carry lone surrogates ("\ud800"); no mail encoding can
        raise ValueError("must be valid Unicode (it holds a lone surrogate)") from None
    found = FORBIDDEN_IN_HEADERS.search(value)
    if found:
        raise ValueError(f"must not contain U+{ord(found.group()):04X} at position {found.start()}: control "
                         "characters and line separators would end the header (header injection); remove it")
    return value


def decoded_words(value: str) -> str:
    """A field's text with its RFC 2047 encoded words decoded; one that does not decode (bad base64, an unknown
    charset) stays as written."""
    try:
        return str(make_header(decode_header(value)))
    except PARSER_FAILURES:
        return value


def parsed_date(value: str) -> datetime | None:
    """The time a Date field's ``value`` says, in UTC where it names no zone ("-0000", as formatdate() writes), or
    None where it says none the standard library can read (no date; a year of fourteen digits: OverflowError)."""
    try:
        date = parsedate_to_datetime(value) if value else None
    except PARSER_FAILURES:
        return None
    return date.replace(tzinfo=UTC) if date is not None and date.tzinfo is None else date


def parsed_leniently(data: bytes) -> tuple[Message, bool]:
    """``data`` parsed (compat32), and whether its parts were: where the parser fails on a part's header (a boundary
    given both whole and in numbered pieces, ``boundary*=a; boundary*0=b``, makes it compare a number with None),
    its header fields alone, the rest one body."""
    try:
        return email.message_from_bytes(data, policy=compat32), True
    except RecursionError:
        raise
    except PARSER_FAILURES:
        return BytesParser(policy=compat32).parsebytes(data, headersonly=True), False


def first_long_line(data: bytes) -> tuple[int, int] | None:
    """``(line number from 1, octets)`` of the first line longer than 998 octets (CRLF not counted), or None.

    Any line that long contains an offset that is a multiple of 999, so only the line around each such offset
    is measured, with bounded searches: a regular expression would take seconds over a large attachment, and
    splitting the message into lines would copy it.
    """
    size, stride = len(data), MAX_LINE_OCTETS + 1
    if size <= MAX_LINE_OCTETS:  # most headers and many bodies: no line can be too long
        return None
    for offset in range(0, size, stride):
        start = data.rfind(b"\n", max(0, offset - stride), offset) + 1
        if start == 0 and offset > stride:  # no line break close before: look further back (a long line)
            start = data.rfind(b"\n", 0, offset) + 1
        end = data.find(b"\n", offset, offset + stride + 1)
        if end == -1:
            end = data.find(b"\n", offset)
            end = size if end == -1 else end
        octets = end - start - (end > start and data[end - 1] == 0x0D)
        if octets > MAX_LINE_OCTETS:
            return data.count(b"\n", 0, start) + 1, octets
    return None


def long_line_message(found: tuple[int, int]) -> str:
    line, octets = found
    return (f"line {line} is {octets} octets long; RFC 5322 allows at most {MAX_LINE_OCTETS} per line: wrap it, or "
            "encode the part as quoted-printable or base64")
