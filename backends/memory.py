"""Keep messages in process, for tests and development: a bounded, thread-safe outbox of what was sent.

It holds at most ``MAIL_MEMORY_MAX_MESSAGES`` messages and ``MAIL_MEMORY_MAX_BYTES`` bytes of them, none older than
``GATEWAY_OUTBOX_MAX_AGE`` seconds when that is set, dropping the oldest first; a single message larger than the
byte bound is refused, as a server's SIZE would refuse it.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING

from mail_gateway.backends.base import EmailBackend
from mail_gateway.backends.keeping import KeptState
from mail_gateway.backends.kept import KeptMessage, KeptSummary, SummaryCache, index_of
from mail_gateway.backends.search_index import KeptIndex
from mail_gateway.errors import MessageTooLargeError
from mail_gateway.mail.rendering import RenderedMessage
from mail_gateway.mail.result import SendResult, all_accepted

if TYPE_CHECKING:
    from mail_gateway.settings.local import MemorySettings


class MemoryBackend(EmailBackend):
    name = "memory"
    settings: MemorySettings

    def __init__(self, settings: MemorySettings) -> None:
        super().__init__(settings)
        self.max_messages = settings.mail_memory_max_messages
        self.max_bytes = settings.mail_memory_max_bytes
        self._lock = threading.Lock()
        self._messages: deque[KeptMessage] = deque()
        self._by_id: dict[str, KeptMessage] = {}
        self._bytes = 0
        self._next_id = 1
        self._changes = 0
        self._summaries: SummaryCache[KeptSummary] = SummaryCache(self.max_messages)
        self._indexes: SummaryCache[KeptIndex] = SummaryCache(self.max_messages, make=index_of)
        self.keeping = KeptState(self.max_messages, settings.gateway_outbox_max_age)

    def deliver(self, message: RenderedMessage) -> SendResult:
        size = len(message.data)
        if size > self.max_bytes:
            raise MessageTooLargeError(
                f"the message is {size} bytes and the memory backend keeps at most {self.max_bytes} "
                "(MAIL_MEMORY_MAX_BYTES); it was not kept", backend=self.name, message_id=message.message_id)
        result = all_accepted(message.message_id, self.name, message.recipients)
        self.keep(message.data, message.recipients, message.envelope_from,
                  delivery={"backend": self.name, "accepted": list(message.recipients)})
        return result

    def keep(self, data: bytes, recipients: tuple[str, ...], envelope_from: str | None,
             delivery: dict[str, object] | None = None) -> KeptMessage:
        """Keep ``data`` as if it had been sent (``mail.outbox.append`` in tests), within the bounds."""
        with self._lock:
            kept = KeptMessage(str(self._next_id), data, recipients, envelope_from)
            self._next_id += 1
            self._messages.append(kept)
            self._by_id[kept.id] = kept
            self._bytes += len(data)
            self._changes += 1
            self.keeping.kept(kept.id, delivery)
            while len(self._messages) > self.max_messages or self._bytes > self.max_bytes:
                self._drop(self._messages.popleft())
            self._drop_too_old()
        self.keeping.publish("message", {"id": kept.id})
        return kept

    def _drop_too_old(self) -> None:  # with the lock held; the oldest are on the left
        now = self.keeping.clock()
        while self._messages and self.keeping.too_old(self.keeping.kept_at(self._messages[0].id) or now, now):
            self._drop(self._messages.popleft())
            self._changes += 1

    @property
    def messages(self) -> list[KeptMessage]:
        """A snapshot of the kept messages, oldest first (the oldest are dropped beyond the bounds)."""
        with self._lock:
            return list(self._messages)

    def _drop(self, kept: KeptMessage, *, deleted: bool = False) -> None:  # with the lock held
        del self._by_id[kept.id]
        self._bytes -= len(kept.data)
        self._summaries.forget(kept.id)
        self._indexes.forget(kept.id)
        self.keeping.forget(kept.id, dropped=not deleted)

    # The ``KeptMail`` reading interface (backends/kept.py).

    def list_kept(self) -> list[KeptMessage]:
        return self.messages[::-1]

    def kept_ids(self) -> list[str]:
        with self._lock:
            if self.keeping.max_age is not None:
                self._drop_too_old()
            return [kept.id for kept in reversed(self._messages)]

    def summary(self, message_id: str) -> KeptSummary | None:
        return self._summaries.get(message_id, self.get_kept)

    def search_index(self, message_id: str) -> KeptIndex | None:
        return self._indexes.get(message_id, self.get_kept)

    def version(self) -> str:
        return f"memory-{id(self)}-{self._changes}"

    def get_kept(self, message_id: str) -> KeptMessage | None:
        with self._lock:
            return self._by_id.get(message_id)

    def delete_kept(self, message_id: str) -> bool:
        with self._lock:
            found = self._by_id.get(message_id)
            if found is not None:
                self._messages.remove(found)
                self._drop(found, deleted=True)
                self._changes += 1
        if found is not None:
            self.keeping.publish("deleted", {"ids": [message_id]})
        return found is not None

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._by_id.clear()
            self._bytes = 0
            self._changes += 1
            self._summaries.forget()
            self._indexes.forget()
            self.keeping.forget()
        self.keeping.publish("cleared", {})
