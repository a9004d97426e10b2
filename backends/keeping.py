"""What a keeping backend knows of its messages besides their bytes: which were read, whose they are, what their
delivery answered, how many the retention bounds dropped, and a feed of changes that wakes whoever waits for one.

The owner of a message is the API key that sent it (``Client.owner``). A backend's ``deliver`` does not see the
request, so the sender names the owner around its delivery (``keeping_for``) and the backend reads it
(``current_owner``) when it keeps the message.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

EVENTS_KEPT = 1000  # a reader further behind than this many changes starts again from the current state

_owner: contextvars.ContextVar[str | None] = contextvars.ContextVar("mail_gateway_kept_owner", default=None)


@contextlib.contextmanager
def keeping_for(owner: str | None) -> Iterator[None]:
    """Messages kept inside this block are ``owner``'s."""
    token = _owner.set(owner)
    try:
        yield
    finally:
        _owner.reset(token)


def current_owner() -> str | None:
    return _owner.get()


@dataclass(frozen=True, slots=True)
class Change:
    sequence: int
    kind: str  # "message" | "deleted" | "cleared" | "read"
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Retention:
    keep: int | None  # the newest this many are kept (None: no count bound)
    max_age_seconds: int | None
    dropped: int  # how many the bounds dropped since the backend started


@dataclass
class _Marks:
    kept_at: float
    owner: str | None = None
    read: bool = False
    delivery: dict[str, Any] | None = None


class KeptState:
    """Read marks, owners, delivery results and the change feed of one backend's kept messages; thread-safe."""

    def __init__(self, keep: int | None = None, max_age: float | None = None) -> None:
        self.keep = keep
        self.max_age = max_age
        self.dropped = 0
        self._marks: dict[str, _Marks] = {}
        self._changed = threading.Condition()
        self._changes: deque[Change] = deque(maxlen=EVENTS_KEPT)
        self._sequence = 0
        self._waiting = 0
        self.clock = time.time  # when messages were kept, for the age bound

    def kept(self, message_id: str, delivery: dict[str, Any] | None = None) -> None:
        """A message was kept just now, for the current owner."""
        with self._changed:
            self._marks[message_id] = _Marks(self.clock(), current_owner(), delivery=delivery)

    def owner(self, message_id: str) -> str | None:
        marks = self._marks.get(message_id)
        return None if marks is None else marks.owner

    def is_read(self, message_id: str) -> bool:
        marks = self._marks.get(message_id)
        return marks is not None and marks.read

    def delivery(self, message_id: str) -> dict[str, Any] | None:
        marks = self._marks.get(message_id)
        return None if marks is None else marks.delivery

    def kept_at(self, message_id: str) -> float | None:
        marks = self._marks.get(message_id)
        return None if marks is None else marks.kept_at

    def mark_read(self, message_id: str, read: bool) -> bool:
        """Mark a kept message; False, marking nothing, for one no longer kept (deleted since it was found)."""
        with self._changed:
            marks = self._marks.get(message_id)
            if marks is None:
                return False
            marks.read = read
        self.publish("read", {"id": message_id, "read": read})
        return True

    def forget(self, message_id: str | None = None, *, dropped: bool = False) -> None:
        """Forget one message's marks (``dropped``: by the retention bounds), or every message's."""
        with self._changed:
            if message_id is None:
                self._marks.clear()
            else:
                self._marks.pop(message_id, None)
            self.dropped += dropped

    def too_old(self, kept_at: float, now: float | None = None) -> bool:
        return self.max_age is not None and (now if now is not None else self.clock()) - kept_at > self.max_age

    def retention(self) -> Retention:
        age = None if self.max_age is None else int(self.max_age)
        return Retention(self.keep, age, self.dropped)

    # The change feed: each change has a sequence number; a reader waits for those after the last it saw.

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        with self._changed:
            self._sequence += 1
            self._changes.append(Change(self._sequence, kind, data))
            self._changed.notify_all()

    def sequence(self) -> int:
        with self._changed:
            return self._sequence

    def changes_after(self, sequence: int, timeout: float) -> list[Change]:
        """The changes after ``sequence``, waiting up to ``timeout`` seconds for one; [] when none came."""
        with self._changed:
            self._waiting += 1
            try:
                self._changed.wait_for(lambda: self._sequence > sequence, timeout=max(timeout, 0.0))
            finally:
                self._waiting -= 1
            return [change for change in self._changes if change.sequence > sequence]

    def waiting(self) -> int:
        """How many readers wait for a change right now."""
        with self._changed:
            return self._waiting

    def wake_all(self) -> None:
        """Wake every waiting reader without a change (the server is stopping, say)."""
        with self._changed:
            self._changed.notify_all()
