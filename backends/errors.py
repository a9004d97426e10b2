"""The gateway's exceptions: configuration, invalid message, and delivery (transient or permanent).

Each carries what a caller needs to report it (the backend, the Message-ID, per-recipient outcomes, the
upstream's SMTP code) and is raised ``from`` its cause. The HTTP layer maps them to status codes in one
place (``gateway/problems.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backends.result import RecipientResult


class GatewayError(Exception):
    """Base class of every error the gateway raises on purpose."""


class ConfigurationError(GatewayError):
    """The configuration cannot work. Raised at start-up, never at the first send.

    ``variable`` names the environment variable to change; the message says how.
    """

    def __init__(self, message: str, *, variable: str | None = None) -> None:
        super().__init__(message)
        self.variable = variable


class InvalidMessageError(GatewayError, ValueError):
    """The message itself is unusable (bad address, header injection, nothing to send)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class DeliveryError(GatewayError):
    """The backend did not accept the message."""

    def __init__(
        self,
        message: str,
        *,
        backend: str,
        message_id: str | None = None,
        recipients: Sequence[RecipientResult] = (),
        smtp_code: int | None = None,
        upstream: str | None = None,
    ) -> None:
        super().__init__(message)
        self.backend = backend
        self.message_id = message_id
        self.recipients = tuple(recipients)
        self.smtp_code = smtp_code
        self.upstream = upstream


class TransientDeliveryError(DeliveryError):
    """Nothing was accepted, and trying again later may work (4xx, connection refused, timeout)."""


class PermanentDeliveryError(DeliveryError):
    """Nothing was accepted, and the same attempt will fail again (5xx, authentication, TLS)."""


class RecipientsRefusedError(PermanentDeliveryError):
    """The upstream permanently refused every recipient; ``recipients`` holds each refusal."""


class MessageTooLargeError(PermanentDeliveryError):
    """The message is larger than the upstream accepts (its advertised SIZE); it was not sent."""


class DeliveryOutcomeUnknownError(DeliveryError):
    """The connection was lost after the whole message was sent but before the server answered.

    The server may have accepted it, so it must not be sent again automatically.
    """
