"""The one interface every delivery backend implements.

A backend is built once, when the application starts, from the gateway's settings::

    backend = SmtpBackend(settings)

and is then shared by every request thread, so it must be thread-safe. Its constructor validates the
settings it needs and raises ``ConfigurationError`` (naming the environment variable) for anything that
cannot work: misconfiguration fails at start-up, never at the first send.

The interface is Django's and flask-mailman's, so a gateway backend can stand wherever theirs does:

``send_messages(messages) -> list[SendResult]``
    Send flask-mailman ``EmailMessage`` objects, in order. Returns one ``SendResult`` per message: the
    Message-ID the message really carries and an outcome for each recipient (``accepted``, ``rejected`` or
    ``deferred`` with the server's code and text). Never a bare count. A message that some recipients
    refused but others accepted is a success: its result lists the refusals. When a message is not
    accepted at all, it raises a ``DeliveryError`` subclass (``TransientDeliveryError`` when a later
    attempt may work, ``PermanentDeliveryError`` when it cannot, ``DeliveryOutcomeUnknownError`` when the
    server may have accepted it) and the messages after it are not sent. A message that cannot be
    rendered raises ``InvalidMessageError`` before anything is sent. This method is written once here;
    backends implement ``deliver`` (and may override ``send_rendered`` to send a batch faster).

``send_batch(rendered) -> list[SendResult | DeliveryError]``
    Deliver many already-rendered messages and report each one's outcome, in order, without letting one
    failure stop the rest. The default sends them one after another on one connection; a backend may
    override it to use several connections at once. It raises only for what is not a delivery outcome.

``open() -> bool`` / ``close()``
    Hold a connection open across several ``send_messages`` calls made by the current thread. ``open``
    returns True only when it opened something, so the caller that opened is the one that closes.
    Backends without connections inherit the no-op versions.

Context manager
    ``with backend:`` opens and closes around a block; if ``open`` fails, what it half-opened is closed
    before the error propagates.

A third-party backend subclasses ``EmailBackend``, sets ``name``, implements ``deliver`` and is selected with
``MAIL_BACKEND=package.module.ClassName``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar

from backends.errors import DeliveryError
from backends.rendering import RenderedMessage, render_message
from backends.result import SendResult

if TYPE_CHECKING:
    from flask_mailman import EmailMessage

    from settings import GatewaySettings


class EmailBackend(ABC):
    name: ClassVar[str] = "custom"

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings

    def open(self) -> bool:
        return False

    def close(self) -> None:
        return None

    def __enter__(self) -> EmailBackend:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def send_messages(self, messages: Sequence[EmailMessage]) -> list[SendResult]:
        rendered = [render_message(message) for message in messages]
        return self.send_rendered(rendered)

    def send_rendered(self, messages: Sequence[RenderedMessage]) -> list[SendResult]:
        """Deliver already-rendered messages in order; the first that fails raises."""
        if not messages:
            return []
        opened = self.open()
        try:
            return [self.deliver(message) for message in messages]
        finally:
            if opened:
                self.close()

    def send_batch(self, messages: Sequence[RenderedMessage]) -> list[SendResult | DeliveryError]:
        """Deliver every message, returning each one's result or delivery error in order."""
        outcomes: list[SendResult | DeliveryError] = []
        if not messages:
            return outcomes
        opened = self.open()
        try:
            for message in messages:
                try:
                    outcomes.append(self.deliver(message))
                except DeliveryError as exc:
                    outcomes.append(exc)
        finally:
            if opened:
                self.close()
        return outcomes

    def check(self) -> None:
        """Readiness: raise a ``GatewayError`` saying what fails if the backend cannot deliver now."""
        return None

    @abstractmethod
    def deliver(self, message: RenderedMessage) -> SendResult:
        """Deliver one message; raise a ``DeliveryError`` subclass when it was not accepted."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
