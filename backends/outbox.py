"""Reading back the mail a backend kept: what the outbox API, the outbox page and the test fixture need.

Backends that keep what they deliver (memory, file) implement ``Outbox``; the console backend keeps a copy in
``.kept`` in development. ``outbox_of(backend)`` finds either and answers None for the rest (smtp hands mail
on; console outside development only prints it), so callers can say why there is nothing to show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class KeptMessage:
    id: str  # stable for as long as the message is kept; safe to put in a URL
    data: bytes  # the RFC 5322 bytes exactly as delivered
    recipients: tuple[str, ...] = ()  # the envelope, where the backend still knows it (memory does, files don't)
    envelope_from: str | None = None


@runtime_checkable
class Outbox(Protocol):
    def list_kept(self) -> list[KeptMessage]:
        """Every kept message, newest first."""
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


def outbox_of(backend: object) -> Outbox | None:
    if isinstance(backend, Outbox):
        return backend
    kept = getattr(backend, "kept", None)  # a backend that keeps a copy beside its own work (console)
    return kept if isinstance(kept, Outbox) else None
