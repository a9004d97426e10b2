"""A connection of the library API: Flask-Mail's ``mail.connect()`` and flask-mailman's ``get_connection()``.

Whichever API a message comes through, it takes the app's one send path (``Sender``). This is the boundary
where the gateway's outcome becomes what callers of the old APIs rely on:

- ``send_messages`` returns how many messages were sent; each message's result (every recipient's outcome,
  its Message-ID) is left on it as ``gateway_status``, as django-anymail leaves ``anymail_status``;
- errors are also the old classes: smtplib's for SMTP failures (``smtplib_errors``), ``BadHeaderError``,
  Flask-Mail's ``AssertionError`` (``message_errors``);
- ``fail_silently=True`` leaves a failure to the send path's ``delivery`` log line and counts it as not sent (one
  at ``open()``, which dials as flask-mailman's did, is logged as a warning);
- ``email_dispatched`` is sent for each message sent, as Flask-Mail sends it (Flask-Mail's own too, once loaded).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from flask import Flask

from mail_gateway.errors import DeliveryError, HeaderInjectionError, InvalidMessageError
from mail_gateway.extension.as_given import AsGiven, keeps_as_given
from mail_gateway.extension.flask_mail import Message, dispatched
from mail_gateway.extension.message_checks import address_text, given_sender
from mail_gateway.extension.message_errors import bad_header_error
from mail_gateway.extension.message_objects import (
    Prepared,
    flask_mail_envelope,
    is_flask_mail_message,
    mark_sent,
    prepare,
)
from mail_gateway.extension.smtplib_errors import raise_compatible
from mail_gateway.mail.rendering import RenderedMessage
from mail_gateway.mail.result import QueuedResult, SendResult
from mail_gateway.sending import Outcome, Sender

if TYPE_CHECKING:
    from mail_gateway.extension.app_mail import AppMail

log = logging.getLogger("mail_gateway")


def _render(prepared: Prepared) -> RenderedMessage:
    try:
        return prepared.compose()
    except HeaderInjectionError as exc:  # what Flask-Mail and flask-mailman raised: their BadHeaderError
        raise bad_header_error(str(exc), exc.field or "headers") from exc


class Connection:
    """Messages sent through one sender, holding its connections between ``open()`` and ``close()`` (or for
    the ``with`` block). Built by ``mail.connect()`` and ``mail.get_connection()``."""

    def __init__(self, app: Flask, mail: AppMail, sender: Sender, *, fail_silently: bool = False,
                 owned: bool = False) -> None:
        self.app = app
        self.mail = mail
        self.sender = sender
        self.fail_silently = fail_silently
        self._owned = owned  # a sender built for this connection alone: its backend closes with it
        self._held: ExitStack | None = None
        # Flask-Mail's open smtplib.SMTP. The gateway's backend keeps its own connections, so it is None unless
        # the caller assigns one (Flask-Mail's users' tests replace it): then messages go to its sendmail().
        self.host: Any = None
        self.num_emails = 0  # Flask-Mail's count of the messages sent through this connection

    @property
    def timeout(self) -> float | None:
        """Seconds an SMTP connection of this one waits on the server, as the application set them (MAIL_TIMEOUT,
        or ``timeout=``); None when it set none, as flask-mailman says. Unset, the gateway still bounds every
        step by MAIL_TIMEOUT's default rather than waiting forever."""
        settings = self.sender.settings
        return settings.mail_timeout if "mail_timeout" in settings.model_fields_set else None

    def open(self) -> bool | None:
        """Hold the backend's connections for this thread and dial one now, so a server that cannot be reached
        fails here, as flask-mailman's and Flask-Mail's open did. True when opened, False when already open, None
        when it failed and ``fail_silently`` kept quiet (a later message tries again, on the send path)."""
        if self._held is not None:
            return False
        held = self._hold()
        if self.sender.spool is None:  # with queued delivery the workers connect, not this process
            try:
                self.sender.backend.dial()
            except DeliveryError as exc:
                held.close()
                if not self.fail_silently:
                    raise_compatible(exc, "")
                log.warning("connection.open() failed, silenced by fail_silently: %s", exc)
                return None
        self._held = held
        return True

    def _hold(self) -> ExitStack:
        held = ExitStack()
        held.enter_context(self.sender.backend.hold())
        return held

    def close(self) -> None:
        host, self.host = self.host, None
        if host is not None:
            host.quit()  # as Flask-Mail's connection quits its host on leaving the block
        held, self._held = self._held, None
        if held is not None:
            held.close()
        if self._owned:
            self.sender.close()

    def __enter__(self) -> Connection:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _opened(self) -> Iterator[None]:
        # Sending without open() connects when the first message needs it: on the send path, which retries and
        # writes each message's delivery log line.
        opened = self._held is None
        if opened:
            self._held = self._hold()
        try:
            yield
        finally:
            if opened:
                self.close()

    # -- Flask-Mail ---------------------------------------------------------------------------------------

    def send(self, message: Any,
             envelope_from: str | tuple[str, str] | None = None) -> SendResult | QueuedResult | None:
        """Send one message of any of the APIs; its result, or None when it failed and ``fail_silently``."""
        prepared, rendered = self._composed(message, envelope_from)
        if self.host is not None:
            return self._send_through_host(message, rendered, envelope_from)
        with self._opened():
            [outcome] = self.sender.deliver([rendered], via="library")
        return self._settle(message, prepared, rendered, outcome)

    def send_message(self, *args: Any, **kwargs: Any) -> SendResult | QueuedResult | None:
        """``send(Message(*args, **kwargs))``."""
        return self.send(Message(*args, **kwargs))

    def _send_through_host(self, message: Any, rendered: RenderedMessage,
                           envelope_from: str | tuple[str, str] | None) -> None:
        # What Flask-Mail's send() does with its host: the message's own bytes and ESMTP options, and its addresses
        # with their names (smtplib sends the addresses alone, so the server sees the same envelope).
        sender, recipients, data = rendered.envelope_from, list(rendered.recipients), rendered.data
        if is_flask_mail_message(message):
            first = envelope_from or given_sender(message, self.mail.default_sender)
            sender, recipients = flask_mail_envelope(address_text(first), message.send_to) or (sender, recipients)
            data = message.as_bytes()
        self.host.sendmail(sender, recipients, data, getattr(message, "mail_options", []),
                           getattr(message, "rcpt_options", []))
        self.num_emails += 1
        dispatched(self.app, message)

    # -- flask-mailman ------------------------------------------------------------------------------------

    def send_messages(self, messages: Iterable[Any]) -> int:
        """Send each message in order and return how many were sent. A message that cannot be rendered raises
        before anything is sent; without ``fail_silently`` the first delivery failure raises and the messages
        after it are not sent, as flask-mailman's SMTP backend does."""
        # flask-mailman skips a message without recipients; a Flask-Mail message without them is an error.
        chosen = [m for m in messages if is_flask_mail_message(m) or m.recipients()]
        composed = [self._composed(message) for message in chosen]
        prepared, rendered = [p for p, _ in composed], [r for _, r in composed]
        with self._opened():
            outcomes = self._deliver(rendered)
        settled = [self._settle(*each) for each in zip(chosen, prepared, rendered, outcomes, strict=False)]
        return sum(result is not None for result in settled)

    def _deliver(self, rendered: Sequence[RenderedMessage]) -> list[Outcome]:
        if self.fail_silently:
            return self.sender.deliver(rendered, via="library")  # all of them, in one backend call
        outcomes: list[Outcome] = []
        for message in rendered:
            outcomes += self.sender.deliver([message], via="library")
            if isinstance(outcomes[-1], DeliveryError):
                break
        return outcomes

    # -- both ---------------------------------------------------------------------------------------------

    def _composed(self, message: Any, envelope_from: str | tuple[str, str] | None = None,
                  ) -> tuple[Prepared, RenderedMessage]:
        try:
            prepared = prepare(message, charset=self.mail.default_charset,
                               ascii_attachments=self.mail.ascii_attachments,
                               envelope_from=address_text(envelope_from) if envelope_from else None,
                               default_sender=self.mail.default_sender)
            return prepared, _render(prepared)
        except InvalidMessageError as exc:
            if not keeps_as_given(self.sender, message, exc):  # MAIL_MEMORY_KEEPS_ANY_ADDRESS
                raise
        prepared = Prepared(AsGiven(message))  # type: ignore[arg-type]
        return prepared, prepared.compose()

    def _settle(self, message: Any, prepared: Prepared, rendered: RenderedMessage,
                outcome: Outcome) -> SendResult | QueuedResult | None:
        if isinstance(outcome, DeliveryError):
            message.gateway_status = None
            if self.fail_silently:
                return None
            raise_compatible(outcome, rendered.envelope_from)
        assert isinstance(outcome, SendResult | QueuedResult)  # delivered now, or stored for the workers
        mark_sent(message, prepared, outcome)
        self.num_emails += 1
        dispatched(self.app, message)
        return outcome
