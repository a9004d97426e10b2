"""A parsed message's tree of parts: which parts are its text and HTML bodies, which are its attachments, and
the bytes and text of each, for ``MessageReader``.

The standard library's ``email`` package parses; what is read here is what it parsed, also where its own walkers
fail on what hostile mail makes of the tree (a multipart whose boundary never comes holds its body as text; a
forwarded message's field may be one its generator cannot write again).
"""

from __future__ import annotations

import email.policy
from collections.abc import Callable
from dataclasses import dataclass
from email.headerregistry import ContentTransferEncodingHeader, ParameterizedMIMEHeader
from email.message import EmailMessage
from typing import Any

from mail_gateway.mail.rfc5322 import PARSER_FAILURES

# The fields whose parser takes time quadratic in their length (it splits the rest of the value again at each
# quoted string: 0.2 s for a Content-Type of 8 KB of '"', a reading of 32 KB 5.7 s), as mail from anyone reaches
# the ingress's inbound routes. One longer than MAX_PARAMETERIZED is parsed up to its last ';' within it; once a
# reading has parsed READING_ROOM characters of them, one longer than AFTER_ROOM (a message of 250 parts, each with
# a Content-Type of 4 KB of ';', took 17 s a reading).
PARAMETERIZED = frozenset(name for name, kind in email.policy.default.header_factory.registry.items()
                          if issubclass(kind, ParameterizedMIMEHeader | ContentTransferEncodingHeader))
MAX_PARAMETERIZED = 4000  # an RFC 2231 file name of 255 CJK characters takes about 2,600
READING_ROOM = 65_536  # some 40 attachments with long non-ASCII names, hundreds with ordinary ones
AFTER_ROOM = 600  # a file name of some 60 CJK characters in RFC 2231 form


def parsable(name: str, value: str, room: list[int] | None = None) -> str:
    """``value`` as the parser may be handed it: a long Content-Type, Content-Disposition or
    Content-Transfer-Encoding cut after its last whole parameter within the limit (to nothing, read as the field's
    default, where none fits), charged to ``room``, what is left of a reading's characters of them."""
    if name.lower() not in PARAMETERIZED:
        return value
    limit = MAX_PARAMETERIZED if room is None or room[0] > 0 else AFTER_ROOM
    if len(value) > limit:
        value = value[:max(value.rfind(";", 0, limit), 0)]
    if room is not None:
        room[0] -= len(value)
    return value


class ReadOnce(EmailMessage):
    """A message that is read and never changed, each of its parts' header fields parsed once (``parsable``):
    EmailMessage parses a field again at every ``get``, and reading a part asks for its Content-Type some fifteen
    times (300 attachments with long non-ASCII names took 6 s at each view of the outbox). Made for each reading
    (``reading``), whose parts share ``room``."""

    room: list[int] = [READING_ROOM]

    def get(self, name: str, failobj: Any = None) -> Any:
        read: dict[str, Any] = self.__dict__.setdefault("_read_fields", {})
        lowered = name.lower()
        if lowered not in read:
            found = next((field for field in self.raw_items() if field[0].lower() == lowered), None)
            if found is None:
                return failobj
            read[lowered] = self.policy.header_fetch_parse(  # type: ignore[union-attr]
                found[0], parsable(*found, self.room))
        return read[lowered]


def reading() -> type[ReadOnce]:
    """The class of one reading's parts: their own ``room``."""
    return type("ReadOnce", (ReadOnce,), {"room": [READING_ROOM]})


@dataclass(frozen=True, slots=True)
class FoundAttachment:
    index: int
    filename: str | None
    content_type: str
    size: int
    content_id: str | None
    inline: bool
    content: bytes
    charset: str | None = None  # the one a text part names
    alternative: bool = False  # a rendering of the body beside text and HTML (a calendar invitation), not a file


def _part_bytes(part: EmailMessage) -> bytes:
    if part.get_content_maintype() == "message":
        inner = part.get_payload()
        if isinstance(inner, list) and inner:
            return _written(inner[0])
        return b""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def part_text(part: EmailMessage) -> str:
    try:
        return str(part.get_content())
    # An unknown or lying charset (LookupError, UnicodeError), or one holding a NUL (ValueError: bytes.decode
    # refuses the name): show what can be shown.
    except (LookupError, ValueError, KeyError):
        return _part_bytes(part).decode("utf-8", errors="replace")


# How a forwarded message's bytes are written back, in turn, until one can: the standard library's generator; the
# same with each field as it was read (refolded, a field may decode to a line break; 8-bit text it would encode);
# its compat32 text generator, which reads parameters otherwise (a boundary in pieces), the octets it kept restored;
# by hand, a body kept as one text.
_WRITERS: tuple[Callable[[EmailMessage], bytes], ...] = (
    lambda message: message.as_bytes(policy=email.policy.SMTP),
    lambda message: message.as_bytes(policy=email.policy.SMTP.clone(refold_source="none", utf8=True)),
    lambda message: message.as_string(policy=email.policy.compat32.clone(linesep="\r\n")).encode(
        "utf-8", "surrogateescape"),
    lambda message: _as_read(message),
)


def _as_read(message: EmailMessage) -> bytes:
    """A message whose body the parser kept as one text (a multipart it could not split) written back by hand: its
    fields and that text as they were read, where every generator reads its parameters and fails on them."""
    body = message._payload  # as read: get_payload() would decode it in the charset the parameters name
    if not isinstance(body, str):
        raise ValueError("its body is parts, which only a generator writes")
    fields = "".join(f"{name}: {value}\r\n" for name, value in message.raw_items())
    return (fields + "\r\n" + body).encode("utf-8", "surrogateescape")


def _written(message: EmailMessage) -> bytes:
    """A forwarded message's bytes; empty where no generator can write them (its part is then offered empty, and
    the message's raw form holds it)."""
    for write in _WRITERS:
        try:
            return write(message)
        except RecursionError:
            raise
        except PARSER_FAILURES:
            continue
    return b""


def _subparts(part: EmailMessage) -> list[EmailMessage]:
    """A multipart's parts. Not ``iter_parts``: a multipart whose boundary was never found holds its body as text,
    and ``iter_parts`` yields that text's characters, which no reader of parts expects."""
    if part.get_content_maintype() != "multipart" or not part.is_multipart():  # the latter: its payload a list
        return []
    return [sub for sub in part.get_payload() if isinstance(sub, EmailMessage)]


def leaves(part: EmailMessage) -> list[EmailMessage]:
    # message/rfc822 is a leaf here: a forwarded message is one attachment, not parts of this one.
    if part.get_content_maintype() == "multipart":
        return [leaf for sub in _subparts(part) for leaf in leaves(sub)]
    return [part]


def alternatives(part: EmailMessage, bodies: set[int]) -> list[EmailMessage]:
    """The parts of a multipart/alternative other than the text and HTML bodies (a calendar invitation); those of
    a forwarded message are its own, so message/rfc822 is not entered, as in ``leaves``."""
    subs = _subparts(part)
    found = [sub for sub in subs if part.get_content_type() == "multipart/alternative"
             and sub.get_content_maintype() != "multipart" and id(sub) not in bodies]
    return found + [inner for sub in subs for inner in alternatives(sub, bodies)]


def attachment(index: int, part: EmailMessage, alternative: bool) -> FoundAttachment:
    content = _part_bytes(part)
    return FoundAttachment(index=index, filename=part.get_filename(), content_type=part.get_content_type(),
                           size=len(content), content_id=(header_text(part, "Content-ID")).strip("<> ") or None,
                           inline=part.get_content_disposition() == "inline", content=content,
                           charset=part.get_content_charset(), alternative=alternative)


def find_bodies(parsed: EmailMessage) -> tuple[EmailMessage | None, EmailMessage | None]:
    """The text and HTML bodies. Where ``get_body`` fails (a multipart whose boundary was never found, which it
    walks as characters), the first text and HTML parts that are no attachment."""
    try:
        return parsed.get_body(preferencelist=("plain",)), parsed.get_body(preferencelist=("html",))
    except RecursionError:
        raise
    except PARSER_FAILURES:
        found = [leaf for leaf in leaves(parsed) if not leaf.is_attachment()]
        return tuple(next((leaf for leaf in found if leaf.get_content_type() == f"text/{kind}"), None)
                     for kind in ("plain", "html"))  # type: ignore[return-value]


def header_text(parsed: EmailMessage, name: str) -> str:
    """A header field's value as the parser reads it; empty where it has none or the parser fails on it."""
    try:
        value = parsed.get(name)
    except PARSER_FAILURES:
        return ""
    return "" if value is None else str(value)
