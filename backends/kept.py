"""Reading back the mail a backend kept: what the outbox API, the outbox page and the test fixture need.

Backends that keep what they deliver (memory, file) implement ``KeptMail``; the console backend keeps a copy in
``.kept`` in development. ``kept_mail_of(backend)`` finds either and answers None for the rest (smtp hands mail
on; console outside development only prints it), so callers can say why there is nothing to show.

Reading costs what is shown: ``kept_ids()`` lists ids without reading a message, and ``summary(id)`` parses a
message once and keeps its summary (``SummaryCache``), so a page of N messages reads at most N of them; a search
compares each message's ``search_index(id)``, made once from a lighter parse (``search_index``). ``version()``
changes whenever the kept mail does, for conditional polling; ``keeping`` holds read marks, owners, delivery
results and the change feed (``keeping``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, runtime_checkable

from mail_gateway.backends.keeping import KeptState
from mail_gateway.backends.search_index import KeptIndex, collapsed, html_text, index_message
from mail_gateway.errors import InvalidMessageError
from mail_gateway.mail.reader import MessageReader
from mail_gateway.mail.tags import split_tags

SUMMARIES_KEPT = 100_000  # a summary is a few hundred bytes; beyond this the least recently used are recomputed
SNIPPET_CHARS = 140
Made = TypeVar("Made")


def visible_text(reader: MessageReader, text: str | None = None, html_part: str | None = None) -> str:
    """The message's words as a reader sees them, whitespace collapsed: its text part, else its HTML's text.
    ``text`` and ``html_part``, when the caller has them already, save decoding the parts again."""
    text = reader.text if text is None and html_part is None else text
    if text is not None:
        return collapsed(text)
    html_part = reader.html if html_part is None else html_part
    return "" if html_part is None else html_text(html_part)


def header_value(reader: MessageReader, name: str) -> str | None:
    value = reader.parsed.get(name)  # only this header is parsed, not all of them
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class KeptMessage:
    id: str  # stable for as long as the message is kept; safe to put in a URL
    data: bytes  # the RFC 5322 bytes exactly as delivered
    recipients: tuple[str, ...] = ()  # the envelope, where the backend still knows it (memory does, files don't)
    envelope_from: str | None = None


@dataclass(frozen=True, slots=True)
class KeptSummary:
    """What lists show of a kept message, and what their filters search."""

    id: str
    message_id: str
    from_: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    subject: str
    date: str | None  # ISO 8601
    size: int
    attachment_count: int
    tags: tuple[str, ...] = ()  # X-Tags, comma-separated
    template: str | None = None  # X-Template: the stored template and version it was rendered from
    snippet: str = ""


def summarize(kept: KeptMessage) -> KeptSummary:
    # Each of the reader's properties parses again: every one is read once here.
    try:
        reader = MessageReader(kept.data, kept.recipients)
    except InvalidMessageError as exc:  # one message nobody can read must not take the list down with it
        return KeptSummary(kept.id, "", "", (), (), (), f"(this message cannot be shown: {exc})", None,
                           len(kept.data), 0)
    date = reader.date
    plain = reader.text
    text = visible_text(reader, plain, reader.html if plain is None else None)
    tags = split_tags(header_value(reader, "x-tags") or "")
    return KeptSummary(kept.id, reader.message_id, reader.from_, tuple(reader.to), tuple(reader.cc),
                       tuple(reader.bcc), reader.subject, None if date is None else date.isoformat(), len(kept.data),
                       len(reader.attachments), tags, header_value(reader, "x-template"),
                       text[:SNIPPET_CHARS].rstrip())


def index_of(kept: KeptMessage) -> KeptIndex:
    return index_message(kept.id, kept.data, kept.recipients)


class SummaryCache(Generic[Made]):
    """Summaries (or search indexes, with ``make=index_of``) by message id, each computed once; thread-safe and
    bounded."""

    def __init__(self, maximum: int = SUMMARIES_KEPT, make: Callable[[KeptMessage], Made] | None = None) -> None:
        self.maximum = maximum
        self.make = make  # None: summarize
        self._lock = threading.Lock()
        self._summaries: OrderedDict[str, Made] = OrderedDict()

    def get(self, message_id: str, load: Callable[[str], KeptMessage | None]) -> Made | None:
        with self._lock:
            found = self._summaries.get(message_id)
            if found is not None:
                self._summaries.move_to_end(message_id)
                return found
        kept = load(message_id)
        if kept is None:
            return None
        found: Made = (self.make or summarize)(kept)  # type: ignore[assignment]  # outside the lock: may be slow
        with self._lock:
            self._summaries[message_id] = found
            while len(self._summaries) > self.maximum:
                self._summaries.popitem(last=False)
        return found

    def forget(self, message_id: str | None = None) -> None:
        """Forget one summary, or all of them."""
        with self._lock:
            if message_id is None:
                self._summaries.clear()
            else:
                self._summaries.pop(message_id, None)


@runtime_checkable
class KeptMail(Protocol):
    keeping: KeptState  # read marks, owners, delivery results, retention and the change feed

    def kept_ids(self) -> list[str]:
        """The id of every kept message, newest first, without reading any of them."""
        ...

    def summary(self, message_id: str) -> KeptSummary | None:
        """The kept message's summary, computed once; None when there is no such message."""
        ...

    def search_index(self, message_id: str) -> KeptIndex | None:
        """What a search compares of the kept message, computed once; None when there is no such message."""
        ...

    def version(self) -> str:
        """A token that changes whenever a message is kept or forgotten."""
        ...

    def get_kept(self, message_id: str) -> KeptMessage | None:
        """The kept message with this ``id``, or None (also for an id that could never exist)."""
        ...

    def delete_kept(self, message_id: str) -> bool:
        """Forget one message; False when there was none with this ``id``."""
        ...

    def clear(self) -> None:
        """Forget every kept message."""
        ...


def kept_mail_of(backend: object) -> KeptMail | None:
    if isinstance(backend, KeptMail):
        return backend
    kept = getattr(backend, "kept", None)  # a backend that keeps a copy beside its own work (console)
    return kept if isinstance(kept, KeptMail) else None
