"""How deeply a message's MIME parts nest (RFC 2046): multipart and message parts within each other.

Every message that arrives as bytes (the raw route, the SMTP ingress, a forwarded message attached to a composed
one) is refused past ``MAX_MIME_DEPTH`` before it is sent or kept, as Postfix refuses mail past its
``mime_nesting_limit``. The depth is read the way the standard library's parser reads the parts — lines end at
CR, LF or CRLF, a header block ends at the first line that is no header, a boundary line of any enclosing
multipart ends a part, a multipart/digest's parts are messages unless they say otherwise — but with a list of
open boundaries instead of recursion, so a message nested thousands deep is measured, not a RecursionError. Only
header blocks and lines that begin with ``--`` are looked at; the rest is skipped by searches in C.
"""

from __future__ import annotations

import re
from email.message import Message
from email.policy import compat32, default

# Postfix's mime_nesting_limit: mail nested deeper is refused there, and no mail client nests near it. The
# standard library's parser, which reads every kept and inbound message, recurses once a level and fails at a
# few hundred (about 250 messages within messages).
MAX_MIME_DEPTH = 100
_COUNTED_UP_TO = 1 << 20
TOO_DEEP = (f"its MIME parts nest more than {MAX_MIME_DEPTH} deep (multipart and message parts within each other); "
            f"nest MIME parts at most {MAX_MIME_DEPTH} deep")

# A header block: lines the standard library takes for fields (its headerRE) up to the first that is not one.
_HEADERS = re.compile(rb"(?:(?:From |[\x21-\x39\x3b-\x7e]*:|[ \t])[^\r\n]*(?:\r\n|\r|\n|\Z))*")
_CONTENT_TYPE = re.compile(rb"(?:\A|[\r\n])(content-type:[^\r\n]*(?:(?:\r\n|\r|\n)[ \t][^\r\n]*)*)", re.I)
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)?")  # lines end at CRLF, CR or LF, as the standard library ends them
_EMPTY_LINE = re.compile(rb"\r\n|\r|\n")
# A parameter as RFC 2045 writes it, a token or a quoted string without escapes, which every reading of the
# standard library agrees on; any other parameter list is left to its own reading.
_TOKEN = r"[!#$&+.^_`{|}~0-9A-Za-z-]+"  # RFC 2045's token, less RFC 2231's * ' %
_PARAMETER = re.compile(rf'[ \t\r\n]*;[ \t\r\n]*({_TOKEN})[ \t\r\n]*=[ \t\r\n]*("[^"\\\r\n<]*"|{_TOKEN})[ \t\r\n]*')


def _boundary(value: str) -> str | None:
    """The boundary parameter of a multipart's Content-Type ``value``, as the standard library's ``get_boundary``
    reads it; a parameter list of the simple form is read here, without building a message."""
    media, _, parameters = value.partition(";")
    found, pos = None, 0
    if value.isascii() and '"' not in media:
        parameters = ";" + parameters
        while match := _PARAMETER.match(parameters, pos):
            if found is None and match.group(1).lower() == "boundary":
                found = match.group(2).strip('"').rstrip()
            pos = match.end()
        if not parameters[pos:].strip(" \t\r\n;"):
            return found
    # Quoting, RFC 2231 sections, comments: the standard library's own reading, whatever it makes of them; the
    # default policy's where compat32 fails (it cannot sort "boundary*" beside "boundary*0").
    for policy in (compat32, default):
        message = Message(policy)
        message.set_raw("Content-Type", value)
        try:
            return message.get_boundary()
        except Exception:  # any failure of its parameter parsing: a message is never refused or failed for it
            continue
    return None


def _content_type(field: bytes | None, default: str) -> tuple[str, bytes | None]:
    """The media type and, for a multipart, its boundary, of a part whose Content-Type field is ``field``."""
    if field is None:
        return default, None
    value = field[13:].decode("ascii", "surrogateescape").lstrip(" \t").rstrip("\r\n")
    media = value.partition(";")[0].strip().lower()
    if media.count("/") != 1:
        return "text/plain", None
    boundary = _boundary(value) if media.startswith("multipart/") else None
    if boundary is None:
        return media, None
    try:
        return media, boundary.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:  # 8-bit text read as U+FFFD, which no line of the message holds: none ends a part
        return media, b"\n"


class _Walk:
    """One pass over a message: the boundaries open at each point, innermost last, and the deepest level seen."""

    def __init__(self, data: bytes, limit: int) -> None:
        self.data, self.limit, self.deepest = data, limit, 0
        self.open: list[tuple[bytes, int, bool]] = []  # boundary, depth, whether a multipart/digest
        # Each open boundary's outermost index in ``open``: a line that is a boundary of several open multiparts
        # belongs to the outermost, as the standard library gives it to the first that asks for it.
        self.where: dict[bytes, int] = {}
        self.found = (-1, -1)  # the last LF and CR found before "--"

    def boundary_at(self, line: bytes) -> tuple[int, bool] | None:
        """Which open multipart ``line`` (starting with ``--``) is a boundary of, and whether it closes it."""
        text = line.rstrip(b" \t\r\n")  # white space may follow a boundary (RFC 2046 5.1.1)
        delimiter = self.where.get(text[2:])
        close = self.where.get(text[2:-2]) if len(text) >= 4 and text.endswith(b"--") else None
        if close is not None and (delimiter is None or close < delimiter):
            return close, True
        return None if delimiter is None else (delimiter, False)

    def dashes(self, pos: int) -> int:
        """Where the first line from ``pos`` on that begins with ``--`` starts (past the end when none does). Each
        search goes on from where the last one found something, so the message is searched once."""
        data, (lf, cr) = self.data, self.found
        if data.startswith(b"--", pos):
            return pos
        if lf < pos:
            lf = data.find(b"\n--", pos) % (len(data) + 1)  # not found (-1): the end
        if cr < pos:
            cr = data.find(b"\r--", pos) % (len(data) + 1)
        self.found = (lf, cr)
        return min(lf, cr) + 1

    def header_block(self, pos: int) -> tuple[bytes | None, int]:
        """The first Content-Type field of the header block at ``pos``, and where its body begins."""
        data = self.data
        end = _HEADERS.match(data, pos).end()  # type: ignore[union-attr]
        line_start = self.dashes(pos) if self.open else end
        while line_start < end:  # a boundary line that looks like a field (a boundary may hold ":") ends it
            line = _LINE.match(data, line_start).group()  # type: ignore[union-attr]
            if self.boundary_at(line) is not None:
                end = line_start
                break
            line_start = self.dashes(line_start + len(line))
        field = _CONTENT_TYPE.search(data, max(pos - 1, 0), end)  # from the line break before the block
        empty = _EMPTY_LINE.match(data, end)
        return None if field is None else field.group(1), end if empty is None else empty.end()

    def enter(self, pos: int, depth: int, default: str) -> int | None:
        """Read the part at ``pos`` within ``depth`` levels, and the messages within it; where its body's
        boundary lines are to be looked for, or None when the walk is over (past the limit, or at the end)."""
        while True:
            field, pos = self.header_block(pos)
            media, boundary = _content_type(field, default)
            # A delivery status is blocks of fields, each a part that may say it is a message or a multipart but
            # ends at the next empty line: two levels, and nothing deeper.
            depth += (boundary is not None or media.startswith("message/")) + (media == "message/delivery-status")
            self.deepest = max(self.deepest, depth)
            if depth > self.limit:
                return None
            if boundary is not None:
                self.where.setdefault(boundary, len(self.open))
                self.open.append((boundary, depth, media == "multipart/digest"))
                return pos
            if not media.startswith("message/") or media == "message/delivery-status":
                return pos
            default = "text/plain"  # a message's own parts: the next header block starts its body

    def close_above(self, index: int) -> None:
        while len(self.open) > index:
            key = self.open.pop()[0]
            if self.where[key] == len(self.open):
                del self.where[key]

    def run(self) -> int:
        data, pos = self.data, self.enter(0, 0, "text/plain")
        while pos is not None and self.open and (start := self.dashes(pos)) < len(data):
            line = _LINE.match(data, start).group()  # type: ignore[union-attr]
            pos, at = start + len(line), self.boundary_at(line)
            if at is None:
                continue
            index, closes = at
            self.close_above(index if closes else index + 1)
            if not closes:
                _, depth, digest = self.open[index]
                pos = self.enter(pos, depth, "message/rfc822" if digest else "text/plain")
        return min(self.deepest, self.limit + 1)


def mime_depth(data: bytes, limit: int = MAX_MIME_DEPTH) -> int:
    """How many multipart and message parts enclose the deepest part of ``data`` (0 for a message of one part),
    counted up to ``limit + 1``: nothing past the limit is read."""
    return _Walk(data, limit).run()


def too_deep(data: bytes) -> bool:
    """Whether ``data``'s MIME parts nest deeper than ``MAX_MIME_DEPTH``."""
    # Each level needs a Content-Type field (one field makes two at most: a digest and its parts, a delivery
    # status), so a message with few of them is shallow enough unread: 2 µs against the walk's 30 for 2 KB. Only
    # for messages up to a megabyte, as the lowered copy doubles the message for a moment.
    if len(data) <= _COUNTED_UP_TO and data.lower().count(b"content-type:") * 2 <= MAX_MIME_DEPTH:
        return False
    return mime_depth(data) > MAX_MIME_DEPTH
