"""Keep messages in process, for tests and development: a bounded, thread-safe outbox of what was sent.

It holds at most ``MAIL_MEMORY_MAX_MESSAGES`` messages and ``MAIL_MEMORY_MAX_BYTES`` bytes of them, dropping the
oldest first; a single message larger than the byte bound is refused, as a server's SIZE would refuse it.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING

from mail_gateway.backends.base import EmailBackend
from mail_gateway.backends.kept import KeptMessage, KeptSummary, SummaryCache
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
        self._summaries = SummaryCache(self.max_messages)

    def deliver(self, message: RenderedMessage) -> SendResult:
        size = len(message.data)
        if size > self.max_bytes:
            raise MessageTooLargeError(
                f"the message is {size} bytes and the memory backend keeps at most {self.max_bytes} "
                "(MAIL_MEMORY_MAX_BYTES); it was not kept", backend=self.name, message_id=message.message_id)
        self.keep(message.data, message.recipients, message.envelope_from)
        return all_accepted(message.message_id, self.name, message.recipients)

    def keep(self, data: bytes, recipients: tuple[str, ...], envelope_from: str | None) -> KeptMessage:
        """Keep ``data`` as if it had been sent (``mail.outbox.append`` in tests), within the bounds."""
        with self._lock:
            kept = KeptMessage(str(self._next_id), data, recipients, envelope_from)
            self._next_id += 1
            self._messages.append(kept)
            self._by_id[kept.id] = kept
            self._bytes += len(data)
            self._changes += 1
            while len(self._messages) > self.max_messages or self._bytes > self.max_bytes:
                self._drop(self._messages.popleft())
        return kept

    @property
    def messages(self) -> list[KeptMessage]:
        """A snapshot of the kept messages, oldest first (the oldest are dropped beyond the bounds)."""
        with self._lock:
            return list(self._messages)

    def _drop(self, kept: KeptMessage) -> None:  # with the lock held
        del self._by_id[kept.id]
        self._bytes -= len(kept.data)
        self._summaries.forget(kept.id)

    # The ``KeptMail`` reading interface (backends/kept.py).

    def list_kept(self) -> list[KeptMessage]:
        return self.messages[::-1]

    def kept_ids(self) -> list[str]:
        with self._lock:
            return [kept.id for kept in reversed(self._messages)]

    def summary(self, message_id: str) -> KeptSummary | None:
        return self._summaries.get(message_id, self.get_kept)

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
                self._drop(found)
                self._changes += 1
        return found is not None

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._by_id.clear()
            self._bytes = 0
            self._changes += 1
            self._summaries.forget()
