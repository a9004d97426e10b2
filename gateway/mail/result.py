"""What a backend reports for each message: its Message-ID and an outcome per recipient."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# "deferred" is a temporary refusal (4xx): the same recipient may be accepted later. "suppressed": on the
# suppression list, so never sent to (``mail_gateway.suppression``).
RecipientStatus = Literal["accepted", "rejected", "deferred", "suppressed"]


@dataclass(frozen=True, slots=True)
class RecipientResult:
    email: str
    status: RecipientStatus
    code: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"email": self.email, "status": self.status}
        if self.code is not None:
            data["code"] = self.code
        if self.reason is not None:
            data["reason"] = self.reason
        return data


@dataclass(frozen=True, slots=True)
class SendResult:
    message_id: str
    backend: str
    recipients: tuple[RecipientResult, ...] = field(default_factory=tuple)
    upstream: str | None = None  # the server that took the message, where there is one
    attempts: int = 1  # how many attempts it took

    @property
    def accepted(self) -> tuple[RecipientResult, ...]:
        return tuple(r for r in self.recipients if r.status == "accepted")

    def to_dict(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "backend": self.backend,
            "recipients": [r.to_dict() for r in self.recipients],
        }


def all_accepted(message_id: str, backend: str, recipients: tuple[str, ...]) -> SendResult:
    """The result of a backend that keeps every message it is given (console, file, memory)."""
    return SendResult(message_id, backend, tuple(RecipientResult(r, "accepted") for r in recipients))


@dataclass(frozen=True, slots=True)
class QueuedResult:
    """A message stored durably for delivery later (queued delivery): the gateway's id for status look-ups, the
    Message-ID it carries, and ``queued`` (or ``scheduled`` until its ``send_at``) for every recipient."""

    id: str
    message_id: str
    status: Literal["queued", "scheduled"]
    recipients: tuple[str, ...]
    suppressed: tuple[str, ...] = ()  # on the suppression list: left out, never stored

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "message_id": self.message_id, "status": self.status,
                "recipients": [{"email": email, "status": self.status} for email in self.recipients]
                + [{"email": email, "status": "suppressed"} for email in self.suppressed]}
