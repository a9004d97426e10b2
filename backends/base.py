"""The one interface every delivery backend implements.

A backend is built once, when the gateway starts, from its own settings: a built-in backend from its subject of
the gateway's settings (``mail_gateway.settings.subjects``), and nothing else::

    backend = SmtpBackend(settings.smtp)        # MAIL_SERVER, MAIL_URL, TLS files, the pool, retries
    backend = ConsoleBackend(settings.console)  # its stream and format, and the bounds of the copy it keeps
    backend = FileBackend(settings.file)        # its directory, and the largest message it must find room for
    backend = MemoryBackend(settings.memory)    # its bounds

(``mail_gateway.backends.registry.create_backend(settings)`` does this for the backend the settings select), and
is then shared by every thread that sends, so it must be thread-safe. Its constructor validates the
settings it needs and raises ``ConfigurationError`` (naming the setting) for anything that cannot work:
misconfiguration fails at start-up, never at the first send.

Backends deliver ``RenderedMessage`` objects (``mail_gateway.mail.rendering``): the envelope and the bytes,
rendered once before they get here. The interface:

``deliver(message) -> SendResult``  (abstract: what a backend implements)
    Deliver one message. Return the Message-ID it carries and an outcome for each recipient (``accepted``,
    ``rejected`` or ``deferred``, with the server's code and text). A message that some recipients refused but
    others accepted is a success: its result lists the refusals. When the message is not accepted at all,
    raise a ``DeliveryError`` subclass: ``TransientDeliveryError`` when a later attempt may work,
    ``PermanentDeliveryError`` when it cannot, ``DeliveryOutcomeUnknownError`` when the server may have it.

``deliver_all(messages, on_outcome=None) -> list[SendResult | DeliveryError]``
    Deliver many messages and report each one's outcome, in order, without letting one failure stop the
    rest; it raises only for what is not a delivery outcome. ``on_outcome(index, outcome)``, when given, is
    called as each outcome happens (from any thread), so a caller can record it before the batch ends.
    The default delivers them one after another,
    holding one connection; a backend may override it to use several at once. The gateway's one send path
    (``mail_gateway.sending``) reaches every backend through this method.

``send_messages(messages) -> list[SendResult]``
    Django's and flask-mailman's call, for a backend used on its own: render each message object (a message
    that cannot be rendered raises ``InvalidMessageError`` before anything is sent), then deliver them in
    order; the first failure raises and the messages after it are not sent.

``hold()``
    A context manager: the connections the current thread borrows are kept for it until the block ends,
    so several deliveries share them. Backends without connections inherit a no-op.

``dial()``
    Inside ``hold()``: make the connection the next delivery will use now, so a server that cannot be reached
    raises its ``DeliveryError`` here, not at the first message (the library API's ``connection.open()``, as
    flask-mailman's and Flask-Mail's open dialled). Backends without connections inherit a no-op.

``check()``
    Readiness: raise a ``GatewayError`` saying what fails if the backend cannot deliver now.

``close()``
    Release what the backend holds (SMTP pools say QUIT). Called when the gateway stops; the backend stays
    usable afterwards, opening what it needs again. Closing twice is harmless.

A third-party backend subclasses ``EmailBackend``, sets ``name`` and implements ``deliver``. Selected with
``MAIL_BACKEND=package.module.ClassName`` (a class named by its path, not registered) it is built from the whole
``GatewaySettings``; registered (a ``BackendRegistration`` in the ``mail_gateway.backends`` entry point group, see
``mail_gateway.settings.registration``) it may declare a ``MAIL_URL`` scheme and settings of its own, and is
built from those alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from mail_gateway.errors import DeliveryError
from mail_gateway.mail.objects import render_email
from mail_gateway.mail.rendering import RenderedMessage
from mail_gateway.mail.result import SendResult

if TYPE_CHECKING:
    from pydantic import BaseModel

OnOutcome = Callable[[int, "SendResult | DeliveryError"], None]


class EmailBackend(ABC):
    name: ClassVar[str] = "custom"

    def __init__(self, settings: BaseModel) -> None:
        # A built-in backend's subject, a registered backend's own settings, or GatewaySettings for a class named
        # by its path: what its registration says it is built from (mail_gateway.backends.registry).
        self.settings = settings

    @abstractmethod
    def deliver(self, message: RenderedMessage) -> SendResult:
        """Deliver one message; raise a ``DeliveryError`` subclass when it was not accepted."""

    def deliver_all(self, messages: Sequence[RenderedMessage],
                    on_outcome: OnOutcome | None = None) -> list[SendResult | DeliveryError]:
        """Deliver every message, returning each one's result or delivery error, in order."""
        outcomes: list[SendResult | DeliveryError] = []
        with self.hold():
            for index, message in enumerate(messages):
                try:
                    outcome: SendResult | DeliveryError = self.deliver(message)
                except DeliveryError as exc:
                    outcome = exc
                outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(index, outcome)
        return outcomes

    def send_messages(self, messages: Sequence[Any]) -> list[SendResult]:
        """Render and deliver message objects in order; the first that fails raises."""
        rendered = [render_email(message) for message in messages]
        with self.hold():
            return [self.deliver(message) for message in rendered]

    @contextmanager
    def hold(self) -> Iterator[None]:
        yield

    def dial(self) -> None:
        return None

    def check(self) -> None:
        return None

    def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
