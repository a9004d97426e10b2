"""Keep messages in process, for tests: a bounded, thread-safe outbox of what was sent."""

from __future__ import annotations

import email
import email.policy
import threading
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage as ParsedMessage
from typing import TYPE_CHECKING

from backends.base import EmailBackend
from backends.outbox import KeptMessage
from backends.rendering import RenderedMessage
from backends.result import SendResult, all_accepted

if TYPE_CHECKING:
    from settings import GatewaySettings


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A sent message as the memory backend keeps it: the exact bytes, so later changes to the sender's
    object cannot alter what the outbox shows."""

    id: int
    rendered: RenderedMessage

    @property
    def message_id(self) -> str:
        return self.rendered.message_id

    @property
    def recipients(self) -> tuple[str, ...]:
        return self.rendered.recipients

    def parsed(self) -> ParsedMessage:
        return email.message_from_bytes(self.rendered.data, policy=email.policy.default)  # type: ignore[return-value]


class MemoryBackend(EmailBackend):
    name = "memory"

    def __init__(self, settings: GatewaySettings) -> None:
        super().__init__(settings)
        self._lock = threading.Lock()
        self._messages: deque[StoredMessage] = deque(maxlen=settings.mail_memory_max_messages)
        self._next_id = 1

    def deliver(self, message: RenderedMessage) -> SendResult:
        with self._lock:
            self._messages.append(StoredMessage(self._next_id, message))
            self._next_id += 1
        return all_accepted(message.message_id, self.name, message.recipients)

    @property
    def outbox(self) -> list[StoredMessage]:
        """A snapshot of the kept messages, oldest first (the oldest are dropped beyond the bound)."""
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    # The ``Outbox`` reading interface (backends/outbox.py).

    def list_kept(self) -> list[KeptMessage]:
        return [_kept(stored) for stored in reversed(self.outbox)]

    def get_kept(self, message_id: str) -> KeptMessage | None:
        with self._lock:
            found = next((m for m in self._messages if str(m.id) == message_id), None)
        return None if found is None else _kept(found)

    def delete_kept(self, message_id: str) -> bool:
        with self._lock:
            found = next((m for m in self._messages if str(m.id) == message_id), None)
            if found is not None:
                self._messages.remove(found)
        return found is not None


def _kept(stored: StoredMessage) -> KeptMessage:
    return KeptMessage(str(stored.id), stored.rendered.data, stored.rendered.recipients)
