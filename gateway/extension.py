"""``MailGateway``: the Flask extension that gives an app the gateway's configured backend.

Per-app state lives in ``app.extensions["mail_gateway"]``; the extension never stores the app, so one
``MailGateway`` can serve several apps. It also registers itself as the app's flask-mailman, so
``flask_mailman.EmailMessage(...).send()`` in the app's own code goes through the same backend.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from flask_mailman import EmailMessage, Mail

from backends.base import EmailBackend
from backends.errors import DeliveryError
from backends.registry import create_backend
from backends.rendering import RenderedMessage
from backends.result import SendResult
from settings import GatewaySettings, load_settings

EXTENSION_KEY = "mail_gateway"
log = logging.getLogger("gateway")


@dataclass(frozen=True)
class GatewayState:
    settings: GatewaySettings
    backend: EmailBackend

    def send_messages(self, messages: Sequence[EmailMessage]) -> list[SendResult]:
        return [_logged(result) for result in self.backend.send_messages(messages)]

    def send(self, message: EmailMessage) -> SendResult:
        return self.send_messages([message])[0]

    def send_rendered(self, message: RenderedMessage) -> SendResult:
        """Send a message whose bytes are already built (the raw route)."""
        [result] = self.backend.send_rendered([message])
        return _logged(result)

    def send_batch(self, messages: Sequence[RenderedMessage]) -> list[SendResult | DeliveryError]:
        """Each message's result or delivery error, in order (see ``EmailBackend.send_batch``)."""
        outcomes = self.backend.send_batch(messages) if messages else []
        for outcome in outcomes:
            if isinstance(outcome, DeliveryError):
                log.warning("not sent message_id=%s: %s", outcome.message_id, outcome)
            else:
                _logged(outcome)
        return outcomes


def _logged(result: SendResult) -> SendResult:
    log.info("sent message_id=%s backend=%s recipients=%d accepted=%d", result.message_id, result.backend,
             len(result.recipients), len(result.accepted))
    return result


class _SharedBackendFactory:
    """What flask-mailman calls a backend class: it builds one per ``get_connection()``. The gateway's
    backend is built once at start-up and shared, so this hands back that instance."""

    def __init__(self, backend: EmailBackend) -> None:
        self.backend = backend

    def __call__(self, mailman: Any = None, fail_silently: bool = False, **overrides: Any) -> EmailBackend:
        if fail_silently:
            raise TypeError("fail_silently=True is not supported: the gateway reports every failure")
        given = sorted(name for name, value in overrides.items() if value is not None)
        if given:
            raise TypeError(f"per-connection settings are not supported ({', '.join(given)}); "
                            "configure the backend with environment variables")
        return self.backend


class MailGateway:
    def __init__(self, app: Flask | None = None, *, settings: GatewaySettings | None = None) -> None:
        self._settings = settings
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, *, settings: GatewaySettings | None = None) -> GatewayState:
        """Validate the settings, build the backend and register both; raises ``ConfigurationError``."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("MailGateway is already registered on this app")
        if "mailman" in app.extensions:
            raise RuntimeError("flask-mailman's Mail is already registered on this app; "
                               "MailGateway takes its place, so remove Mail(app)")
        settings = settings or self._settings or load_settings()
        state = GatewayState(settings, create_backend(settings))
        app.extensions[EXTENSION_KEY] = state
        app.extensions["mailman"] = Mail.init_mail(
            {"MAIL_BACKEND": _SharedBackendFactory(state.backend),
             "MAIL_DEFAULT_SENDER": settings.mail_default_sender}
        )
        return state

    @staticmethod
    def state(app: Flask | None = None) -> GatewayState:
        app = app or current_app
        try:
            return app.extensions[EXTENSION_KEY]
        except KeyError:
            raise RuntimeError("MailGateway is not registered on this app; call MailGateway(app)") from None

    @property
    def backend(self) -> EmailBackend:
        return self.state().backend

    def send(self, message: EmailMessage) -> SendResult:
        """Send one message through the current app's backend."""
        return self.state().send(message)
