"""A parsed message's tree of parts: which parts are its text and HTML bodies, which are its attachments, and
the bytes and text of each, for ``MessageReader``.

The standard library's ``email`` package parses; what is read here is what it parsed, also where its own walkers
fail on what hostile mail makes of the tree (a multipart whose boundary never comes holds its body as text; a
forwarded message's field may be one its generator cannot write again).
"""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from email.message import EmailMessage

from mail_gateway.mail.rfc5322 import PARSER_FAILURES


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
    except (LookupError, UnicodeError, KeyError):  # an unknown or lying charset: show what can be shown
        return _part_bytes(part).decode("utf-8", errors="replace")


def _written(message: EmailMessage) -> bytes:
    """A forwarded message's bytes, as the standard library's generator writes them back; where it cannot (a field
    it would refold decodes to a line break or holds 8-bit text), as its compat32 text generator writes them: such
    a field as an encoded word, each part's octets as they were read."""
    try:
        return message.as_bytes(policy=email.policy.SMTP)
    except RecursionError:
        raise
    except PARSER_FAILURES:
        written = message.as_string(policy=email.policy.compat32.clone(linesep="\r\n"))
    try:
        return written.encode("utf-8", "surrogateescape")  # the octets the parser kept as surrogates, restored
    except UnicodeEncodeError:  # a surrogate that stands for no octet (an encoded word's)
        return written.encode("utf-8", "replace")


def _subparts(part: EmailMessage) -> list[EmailMessage]:
    """A multipart's parts. Not ``iter_parts``: a multipart whose boundary was never found holds its body as text,
    and ``iter_parts`` yields that text's characters, which no reader of parts expects."""
    if part.get_content_maintype() != "multipart":
        return []
    payload = part.get_payload()
    return [sub for sub in payload if isinstance(sub, EmailMessage)] if isinstance(payload, list) else []


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
