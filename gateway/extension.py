"""``MailGateway``: the Flask extension that gives an app the gateway's configured backend.

Per-app state lives in ``app.extensions["mail_gateway"]``; the extension never stores the app, so one
``MailGateway`` can serve several apps. It also registers itself as the app's flask-mailman, so
``flask_mailman.EmailMessage(...).send()`` in the app's own code goes through the same send path.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from flask_mailman import Mail

from mail_gateway.backends.base import EmailBackend
from mail_gateway.mail.rendering import render_email
from mail_gateway.mail.result import SendResult
from mail_gateway.sending import Sender
from mail_gateway.settings import GatewaySettings, load_settings

STATE_KEY = "mail_gateway"


@dataclass(frozen=True)
class GatewayState:
    settings: GatewaySettings
    sender: Sender

    @property
    def backend(self) -> EmailBackend:
        return self.sender.backend


class MailmanConnection:
    """What flask-mailman gets from ``get_connection()``: a connection whose messages take the gateway's
    send path. ``open()``/``close()`` hold the backend's connections for this thread in between."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        self._held: ExitStack | None = None

    def open(self) -> bool:
        if self._held is not None:
            return False
        self._held = ExitStack()
        self._held.enter_context(self.sender.backend.hold())
        return True

    def close(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.close()

    def __enter__(self) -> MailmanConnection:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_messages(self, messages: Any) -> list[SendResult]:
        rendered = [render_email(message) for message in messages]
        return [self.sender.send_rendered(message, via="library") for message in rendered]


class _ConnectionFactory:
    """What flask-mailman calls a backend class: it builds one per ``get_connection()``."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender

    def __call__(self, mailman: Any = None, fail_silently: bool = False, **overrides: Any) -> MailmanConnection:
        if fail_silently:
            raise TypeError("fail_silently=True is not supported: the gateway reports every failure")
        given = sorted(name for name, value in overrides.items() if value is not None)
        if given:
            raise TypeError(f"per-connection settings are not supported ({', '.join(given)}); "
                            "configure the backend with environment variables")
        return MailmanConnection(self.sender)


class MailGateway:
    def __init__(self, app: Flask | None = None, *, settings: GatewaySettings | None = None,
                 backend: EmailBackend | None = None) -> None:
        """``settings`` default to the environment's; ``backend`` to the one the settings select."""
        self._settings = settings
        self._backend = backend
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, *, settings: GatewaySettings | None = None,
                 backend: EmailBackend | None = None) -> GatewayState:
        """Validate the settings, build the backend and register both; raises ``ConfigurationError``."""
        if STATE_KEY in app.extensions:
            raise RuntimeError("MailGateway is already registered on this app")
        if "mailman" in app.extensions:
            raise RuntimeError("flask-mailman's Mail is already registered on this app; "
                               "MailGateway takes its place, so remove Mail(app)")
        settings = settings or self._settings or load_settings()
        backend = backend or self._backend
        sender = Sender(settings, backend) if backend is not None else Sender.from_settings(settings)
        state = GatewayState(settings, sender)
        app.extensions[STATE_KEY] = state
        app.extensions["mailman"] = Mail.init_mail(
            {"MAIL_BACKEND": _ConnectionFactory(sender), "MAIL_DEFAULT_SENDER": settings.mail_default_sender}
        )
        return state

    @staticmethod
    def state(app: Flask | None = None) -> GatewayState:
        app = app or current_app
        try:
            return app.extensions[STATE_KEY]
        except KeyError:
            raise RuntimeError("MailGateway is not registered on this app; call MailGateway(app)") from None

    @property
    def backend(self) -> EmailBackend:
        return self.state().backend

    def send(self, message: Any) -> SendResult:
        """Send one flask-mailman message through the current app's backend."""
        return self.state().sender.send_email(message)
