"""What the outbox search compares, per kept message: its fields folded once, its size, date, tags and whether it
has attachments.

Made from a light parse (the standard library's ``compat32`` policy, about ten times cheaper than the full one the
reader uses), because a search looks at every kept message while a list shows a page of them: a first search over
10,000 messages parses each once this way, and only the page it shows is read in full (``KeptSummary``).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message

from mail_gateway.mail.rfc5322 import PARSER_FAILURES, decoded_words, parsed_date, parsed_leniently
from mail_gateway.mail.tags import split_tags

# A longer body is searched in its first this many characters.
SEARCHED_TEXT_CHARS = 64 * 1024
# Each written so that a hostile part cannot make it quadratic: an element's end is looked for once from its start
# (a pattern ".*?</style>" looked from every "<style" to the end of the input when there was none), and a tag
# cannot run over the next "<" ("<[^>]*>" scanned from every "<" to the end when no ">" followed).
_INVISIBLE_START = re.compile(r"<(style|script|head)\b", re.IGNORECASE)
_TAG = re.compile(r"<[^<>]*>")
_SPACE = re.compile(r"\s+")


def fold(text: str) -> str:
    """What a search compares: compatibility forms joined (NFKC) and case folded, for any script."""
    return unicodedata.normalize("NFKC", text).casefold()


def fold_accents(text: str) -> str:
    """``fold`` with the accents taken off too, so a term typed without them finds the accented word."""
    decomposed = unicodedata.normalize("NFKD", text)
    return fold("".join(char for char in decomposed if not unicodedata.combining(char)))


def collapsed(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def html_text(markup: str) -> str:
    """The words of an HTML part as a reader sees them, whitespace collapsed."""
    return collapsed(html.unescape(_TAG.sub(" ", _without_invisible(markup))))


def _without_invisible(markup: str) -> str:
    """``markup`` without its style, script and head elements (one left open hides the rest, as in a browser)."""
    kept, position, lowered = [], 0, markup.lower()
    while (start := _INVISIBLE_START.search(markup, position)) is not None:
        kept.append(markup[position:start.start()])
        end = lowered.find("</" + start.group(1).lower(), start.end())
        closing = lowered.find(">", end) if end != -1 else -1
        if closing == -1:
            return " ".join(kept)
        position = closing + 1
    kept.append(markup[position:])
    return " ".join(kept)


# Every field an index holds: the headers and text searched, and "words", all of them at once.
SEARCHED_FIELDS = ("from", "to", "cc", "subject", "message-id", "tag", "text", "words")


@dataclass(frozen=True, slots=True)
class KeptIndex:
    id: str
    size: int
    attachment_count: int
    timestamp: float | None  # the Date, in seconds since the epoch
    tags: tuple[str, ...]
    index: Mapping[str, tuple[str, str]]  # each searchable field: (fold, fold_accents)


def _header(parsed: Message, name: str) -> str:
    value = parsed.get(name)
    if value is None:
        return ""
    return decoded_words(str(value))


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    try:  # the charset parameter's reading fails on pieces given twice (RFC 2231): PARSER_FAILURES' TypeError
        return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    except PARSER_FAILURES:
        return payload.decode("utf-8", errors="replace")


def _bodies(parsed: Message) -> tuple[str, int]:
    """The text a reader sees (the first text part, else the first HTML part's words) and how many other parts
    the message has (its attachments)."""
    text = markup = None
    others = 0
    for part in parsed.walk():
        if part.is_multipart():
            continue
        kind, attached = part.get_content_type(), part.get_content_disposition() == "attachment"
        if kind == "text/plain" and text is None and not attached:
            text = _decoded(part)
        elif kind == "text/html" and markup is None and not attached:
            markup = _decoded(part)
        else:
            others += 1
    return collapsed(text) if text is not None else html_text(markup or ""), others


def index_message(message_id: str, data: bytes, recipients: tuple[str, ...] = ()) -> KeptIndex:
    try:
        parsed, readable = parsed_leniently(data)  # unreadable parts: the message is found by its header fields
        text, attachments = _bodies(parsed) if readable else ("", 0)
    except RecursionError:  # MIME parts nested hundreds deep: found by size and nothing else, not a failed list
        empty = ("", "")
        return KeptIndex(message_id, len(data), 0, None, (), dict.fromkeys(SEARCHED_FIELDS, empty))
    tags = split_tags(_header(parsed, "X-Tags"))
    date = parsed_date(_header(parsed, "Date"))
    timestamp = None if date is None else date.timestamp()
    fields = {"from": _header(parsed, "From"), "to": " ".join([_header(parsed, "To"), *recipients]),
              "cc": _header(parsed, "Cc"), "subject": _header(parsed, "Subject"),
              "message-id": _header(parsed, "Message-ID"), "tag": "\n".join(tags),
              "text": text[:SEARCHED_TEXT_CHARS]}
    folded = {name: (fold(value), fold_accents(value)) for name, value in fields.items()}
    # A free word looks in these at once: one comparison per message (a line break keeps fields apart).
    words = [folded[name] for name in ("subject", "from", "to", "cc", "text")]
    folded["words"] = ("\n".join(w[0] for w in words), "\n".join(w[1] for w in words))
    return KeptIndex(message_id, len(data), attachments, timestamp, tags, folded)
