"""Every exception the gateway raises on purpose, in one small hierarchy.

This module is the ground floor: it imports nothing of the project, so every other part can raise these. Each
error carries what a caller needs to report it (the field, the backend, the Message-ID, per-recipient outcomes, the
upstream's SMTP code) and is raised ``from`` its cause. The HTTP layer maps them to status codes in one place
(``mail_gateway.http.problems``), the SMTP ingress to replies in one place (``mail_gateway.ingress.replies``).

    GatewayError
    ├── ConfigurationError            the configuration cannot work (start-up)
    ├── InvalidMessageError           the message is unusable; ``errors`` lists each field and its fix
    │   ├── HeaderInjectionError      a control character or line break where a header would hold it
    │   └── TemplateError             a template cannot be saved or rendered (its name, part, line, variable)
    ├── DeliveryError                 the backend did not accept the message
    │   ├── TransientDeliveryError    nothing accepted; a later attempt may work
    │   │   └── ConnectionSetupError  the upstream could not be reached or refused the session
    │   ├── PermanentDeliveryError    nothing accepted; the same attempt fails again
    │   │   ├── RecipientsRefusedError
    │   │   │   └── RecipientsSuppressedError  every recipient is on the suppression list
    │   │   ├── MessageTooLargeError
    │   │   ├── ExtensionMissingError the message needs SMTPUTF8 or 8BITMIME the upstream lacks
    │   │   ├── SenderNotAllowedError GATEWAY_ALLOWED_SENDERS refuses its sender; never reached a backend
    │   │   └── MessageRefusedError   a pipeline step found it unusable as it is; never reached a backend
    │   └── DeliveryOutcomeUnknownError  the reply to the final dot was lost
    ├── StoreUnavailableError         the store did not answer within its bound; nothing was written
    │   └── StoreRejectedError        the store refused the change itself: trying it again fails again
    │       └── StoreValueError       for a value it cannot hold or compare (a NUL in PostgreSQL text)
    ├── QueueError                    a request about queued messages that cannot be served
    │   ├── QueuedDeliveryOffError    the gateway delivers directly and keeps no queue
    │   ├── NoSuchQueuedMessageError  no message has that id
    │   ├── NothingPendingError       the message has no recipient left to retry or cancel
    │   └── DeliveryInFlightError     a worker is delivering the message: too late to cancel it now
    ├── NoSuchTemplateError           no stored template or template file has that name
    └── TemplateConflictError         a template's name is taken, or it is a file and cannot be changed

These classes are plain. Code written for Flask-Mail, flask-mailman or Django catches ``smtplib`` exceptions,
``BadHeaderError`` or ``AssertionError``; the library API raises subclasses of these that are the old classes too,
and they live with it (``mail_gateway.extension.smtplib_errors``, ``message_errors``), above everything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class GatewayError(Exception):
    """Base class of every error the gateway raises on purpose."""


class ConfigurationError(GatewayError):
    """The configuration cannot work. Raised at start-up, never at the first send. ``variable`` names the setting
    to change (``extra``: the extra to install, for a feature it needs); the message says how."""

    def __init__(self, message: str, *, variable: str | None = None, extra: str | None = None) -> None:
        super().__init__(message)
        self.variable, self.extra = variable, extra


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field of a message (``to[1]``, ``attachments[0].filename``) and how to fix it."""

    field: str
    message: str


class InvalidMessageError(GatewayError, ValueError):
    """The message itself is unusable (bad address, header injection, nothing to send). ``errors`` lists every
    problem found, each with its field; ``field`` is the first one's."""

    def __init__(self, message: str | None = None, *, field: str | None = None,
                 errors: Sequence[FieldError] = ()) -> None:
        errors = tuple(errors) or (FieldError(field or "body", message or "invalid"),)
        if message is None:
            fields = ", ".join(dict.fromkeys(e.field for e in errors))
            message = f"The message is invalid: check {fields}."
        super().__init__(message)
        self.errors = errors
        self.field = field or errors[0].field


class HeaderInjectionError(InvalidMessageError):
    """A header field would hold a control character or a line break (header injection)."""


class TemplateError(InvalidMessageError):
    """A template cannot be saved or rendered: its ``template`` name, ``part`` (subject, text, html), ``line`` and
    missing ``variable``, where known; ``errors`` names the field to fix (the part, or ``variables.<name>``)."""

    def __init__(self, message: str, *, template: str | None = None, part: str | None = None,
                 line: int | None = None, variable: str | None = None, field: str | None = None) -> None:
        super().__init__(message, field=field or part or "template")
        self.template, self.part, self.line, self.variable = template, part, line, variable


class DeliveryError(GatewayError):
    """The backend did not accept the message. Its message (``str(exc)``) is for the log and may name the
    upstream; ``client_detail`` is what the gateway's clients are told instead, with ``smtp_code`` and ``smtp_text``."""

    def __init__(self, message: str, *, backend: str, message_id: str | None = None, recipients: Sequence[Any] = (),
                 smtp_code: int | None = None, upstream: str | None = None, smtp_command: str | None = None,
                 smtp_text: str | None = None, client_detail: str | None = None) -> None:
        super().__init__(message)
        self.backend = backend
        self.smtp_command = smtp_command  # the SMTP command refused (MAIL: the sender; DATA: the message)
        self.message_id = message_id
        self.recipients = tuple(recipients)  # RecipientResult of each recipient, where known
        self.smtp_code = smtp_code
        self.upstream = upstream
        self.smtp_text = smtp_text  # the upstream's reply text to smtp_code
        # What an API client may be told: the message names the upstream's host, port and login, for the log.
        self.client_detail = client_detail
        self.attempts = 1  # how many attempts the backend made in all before giving up


class TransientDeliveryError(DeliveryError):
    """Nothing was accepted, and trying again later may work (4xx, connection refused, timeout)."""


class ConnectionSetupError(TransientDeliveryError):
    """The upstream could not be reached or refused the session (4xx greeting, refused, timeout): failover moves on."""


class PermanentDeliveryError(DeliveryError):
    """Nothing was accepted, and the same attempt will fail again (5xx, authentication, TLS)."""


class RecipientsRefusedError(PermanentDeliveryError):
    """The upstream permanently refused every recipient; ``recipients`` holds each refusal, ``errors`` its field."""
    errors: tuple[FieldError, ...] = ()  # the request field of each, where the way in had a request


class RecipientsSuppressedError(RecipientsRefusedError):
    """Every recipient is on the suppression list: sent to no one (``recipients``: each one ``suppressed``)."""


class MessageTooLargeError(PermanentDeliveryError):
    """The message is larger than the backend accepts; it was not sent."""


class ExtensionMissingError(PermanentDeliveryError):
    """The message needs an SMTP extension the upstream did not announce (``extension``: ``SMTPUTF8`` for a
    non-ASCII address, ``8BITMIME`` for 8-bit data that cannot be re-encoded); it was not sent."""

    def __init__(self, message: str, *, extension: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.extension = extension


class DeliveryOutcomeUnknownError(DeliveryError):
    """The connection was lost after the message was sent, before the reply: it may be accepted, so is never resent."""


class SenderNotAllowedError(PermanentDeliveryError):
    """``GATEWAY_ALLOWED_SENDERS`` does not let this client send as the message's envelope sender, From or
    Sender (``field`` says which: ``mail_from``, ``from`` or ``sender``). Refused before any backend saw it."""

    def __init__(self, message: str, *, field: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.field = field


class MessageRefusedError(PermanentDeliveryError):
    """A step of the message pipeline found the message unusable as it is (``errors``: each field and its fix,
    from the ``InvalidMessageError`` it raised) and refused it before any backend saw it. It is answered as an
    invalid message (HTTP 422), yet is one message's outcome, so one such message never stops a batch."""

    def __init__(self, message: str, *, errors: Sequence[FieldError], **kw: Any) -> None:
        super().__init__(message, **kw)
        self.errors = tuple(errors)
        self.field = self.errors[0].field if self.errors else "body"


class StoreUnavailableError(GatewayError):
    """The store did not answer within its bound, or is gone and cannot be recreated: nothing written; retry later."""


class StoreRejectedError(StoreUnavailableError):
    """The store refused the change itself (a constraint, a value): nothing was written; trying again fails again."""


class StoreValueError(StoreRejectedError):
    """A value of the request the store cannot hold or compare: the request's fault; ``__cause__`` the driver's."""


class StoreSchemaError(StoreUnavailableError):
    """The store's schema is not this version's: ``db upgrade`` brings an older one up; a later release's, never."""


class QueueError(GatewayError):
    """A request about queued messages that cannot be served."""


class QueuedDeliveryOffError(QueueError):
    """The gateway delivers directly (``GATEWAY_DELIVERY=direct``), so it keeps no queue to look into."""


class NoSuchQueuedMessageError(QueueError):
    """No message in the store has this id."""


class NothingPendingError(QueueError):
    """Every recipient of the message already has a final outcome: nothing is left to retry or cancel."""


class DeliveryInFlightError(QueueError):
    """A worker holds the message under a lease and may be sending it: a cancel, unable to stop it, is refused."""


class NoSuchTemplateError(GatewayError):
    """No stored template and no file of GATEWAY_TEMPLATES_DIR has this name."""


class TemplateConflictError(GatewayError):
    """``reason``: ``exists`` (the name is taken) or ``read-only`` (a file of GATEWAY_TEMPLATES_DIR has it)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
