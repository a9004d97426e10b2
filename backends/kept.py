"""Reading back the mail a backend kept: what the outbox API, the outbox page and the test fixture need.

Backends that keep what they deliver (memory, file) implement ``KeptMail``; the console backend keeps a copy in
``.kept`` in development. ``kept_mail_of(backend)`` finds either and answers None for the rest (smtp hands mail
on; console outside development only prints it), so callers can say why there is nothing to show.

Reading costs what is shown: ``kept_ids()`` lists ids without reading a message, and ``summary(id)`` parses a
message once and keeps its summary (``SummaryCache``), so a page of N messages reads at most N of them, and
the filters search summaries. ``version()`` changes whenever the kept mail does, for conditional polling.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from mail_gateway.mail.reader import MessageReader

SUMMARIES_KEPT = 100_000  # a summary is a few hundred bytes; beyond this the least recently used are recomputed


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


def summarize(kept: KeptMessage) -> KeptSummary:
    reader = MessageReader(kept.data, kept.recipients)
    date = reader.date
    return KeptSummary(kept.id, reader.message_id, reader.from_, tuple(reader.to), tuple(reader.cc),
                       tuple(reader.bcc), reader.subject, None if date is None else date.isoformat(), len(kept.data),
                       len(reader.attachments))


class SummaryCache:
    """Summaries by message id, each computed once; thread-safe and bounded."""

    def __init__(self, maximum: int = SUMMARIES_KEPT) -> None:
        self.maximum = maximum
        self._lock = threading.Lock()
        self._summaries: OrderedDict[str, KeptSummary] = OrderedDict()

    def get(self, message_id: str, load: Callable[[str], KeptMessage | None]) -> KeptSummary | None:
        with self._lock:
            found = self._summaries.get(message_id)
            if found is not None:
                self._summaries.move_to_end(message_id)
                return found
        kept = load(message_id)
        if kept is None:
            return None
        found = summarize(kept)  # outside the lock: parsing may take a while
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
    def kept_ids(self) -> list[str]:
        """The id of every kept message, newest first, without reading any of them."""
        ...

    def summary(self, message_id: str) -> KeptSummary | None:
        """The kept message's summary, computed once; None when there is no such message."""
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
