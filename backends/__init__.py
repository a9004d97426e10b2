"""Delivery backends behind one interface (see ``backends/base.py``)."""

from backends.base import EmailBackend
from backends.errors import (
    ConfigurationError,
    DeliveryError,
    DeliveryOutcomeUnknownError,
    GatewayError,
    InvalidMessageError,
    PermanentDeliveryError,
    RecipientsRefusedError,
    TransientDeliveryError,
)
from backends.registry import create_backend
from backends.result import RecipientResult, SendResult

__all__ = [
    "ConfigurationError",
    "DeliveryError",
    "DeliveryOutcomeUnknownError",
    "EmailBackend",
    "GatewayError",
    "InvalidMessageError",
    "PermanentDeliveryError",
    "RecipientResult",
    "RecipientsRefusedError",
    "SendResult",
    "TransientDeliveryError",
    "create_backend",
]
