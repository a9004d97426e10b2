"""``MailGateway``: the Flask extension that gives an app the gateway's configured backend, with Flask-Mail's and
flask-mailman's APIs.

``from mail_gateway import MailGateway as Mail, Message`` runs code written for Flask-Mail, and flask-mailman
code runs with ``MailGateway`` in place of its ``Mail``. Settings come from ``app.config`` (its ``MAIL_*`` and
``GATEWAY_*`` keys) and the environment, which overrides it (``mail_gateway.settings.app_config``).

Per-app state is the app's ``Runtime`` (``mail_gateway.runtime``), in ``app.extensions["mail_gateway"]``, so
one ``MailGateway`` can serve several apps: inside an app context it always works on the current app. Outside
one, a ``MailGateway(app)`` works on that app, as Flask-Mail's ``Mail(app)`` does (its users send and
``record_messages()`` outside any context); a bare one that was ``init_app``-ed needs an app context to send, and
its ``record_messages()`` records every app.

It also registers ``app.extensions["mail"]`` and ``["mailman"]`` (``mail_gateway.extension.app_mail``), through
which Flask-Mail's and flask-mailman's message classes send.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, has_app_context

from mail_gateway.backends.base import EmailBackend
from mail_gateway.extension.app_mail import STATE_KEY, AppMail
from mail_gateway.extension.connection import Connection
from mail_gateway.extension.flask_mail import email_dispatched
from mail_gateway.extension.sent_email import SentMail
from mail_gateway.mail.result import SendResult
from mail_gateway.runtime import Runtime
from mail_gateway.settings import GatewaySettings, load_settings

__all__ = ["STATE_KEY", "MailGateway"]
log = logging.getLogger("mail_gateway")
STATE_ATTRIBUTES = {"default_sender", "default_charset", "ascii_attachments", "use_localtime", "suppress", "debug",
                    "max_emails", "server", "port", "username", "use_tls", "use_ssl", "timeout", "ssl_keyfile",
                    "ssl_certfile", "file_path", "password"}



class _State:
    """``MailGateway.state(app)``: the app's runtime (default: the current app's), its settings, sender and
    store. On an instance, ``mail.state`` is Flask-Mail's state of the app (its ``AppMail``, whose attributes
    Flask-Mail's code and tests set); called, ``mail.state()`` is the runtime again."""

    def __get__(self, instance: MailGateway | None, owner: type) -> Any:
        return Runtime.of if instance is None else instance._mail()


class MailGateway:
    def __init__(self, app: Flask | None = None, *, settings: GatewaySettings | None = None,
                 backend: EmailBackend | None = None) -> None:
        """``settings`` default to the app's ``app.config`` and the environment; ``backend`` to the one the
        settings select."""
        self._settings = settings
        self._backend = backend
        self._app = app  # only the constructor's app, for use outside an app context
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, *, settings: GatewaySettings | None = None,
                 backend: EmailBackend | None = None) -> Runtime:
        """Validate the settings, build the backend and register both; raises ``ConfigurationError`` naming the
        setting (or the ``app.config`` key) to fix."""
        if STATE_KEY in app.extensions:
            raise RuntimeError("MailGateway is already registered on this app")
        for key, name in (("mailman", "flask-mailman's Mail"), ("mail", "Flask-Mail's Mail")):
            if key in app.extensions:
                raise RuntimeError(f"{name} is already registered on this app; MailGateway takes its place, "
                                   "so remove Mail(app)")
        given = settings or self._settings
        settings = given or load_settings(app_config=app.config, testing=app.testing)
        backend = backend or self._backend
        state = Runtime.build(settings, backend)
        state.mail = mail = AppMail(app, settings)
        state.install(app)
        app.extensions["mailman"] = app.extensions["mail"] = mail
        if given is None and state.backend.name == "console" and not settings.backend_named:
            # Said once, here: an app that configured nothing would otherwise "send" without a trace.
            log.warning("No MAIL_SERVER or MAIL_BACKEND is set, so mail is printed to the console and not sent "
                        "(development); set MAIL_SERVER to send over SMTP")
        return state

    state = _State()

    def _current_app(self) -> Flask | None:
        if has_app_context():
            return current_app._get_current_object()  # type: ignore[attr-defined]
        return self._app

    def _mail(self) -> AppMail:
        app = self._current_app()
        if app is None:
            # Which app is not guessed from the ones init_app() saw: an app factory builds one per test, and
            # how many are still alive depends on the garbage collector.
            raise RuntimeError("MailGateway() was built without an app and no app context is active; send "
                               "inside `with app.app_context():` (or a request), or build it as MailGateway(app)")
        mail = MailGateway.state(app).mail
        assert mail is not None
        return mail

    def init_mail(self, config: Mapping[str, Any], debug: bool | int = False, testing: bool = False) -> AppMail:
        """Flask-Mail's ``init_mail``: ``config`` validated as ``init_app`` validates ``app.config`` (raises
        ``ConfigurationError``), and the state built from it, for the current app. Its message defaults
        (``default_sender``, ``default_charset``, ``ascii_attachments``, ``backend``) come from ``config``;
        it sends through the app's gateway, which keeps its own settings. ``debug`` is ignored (MAIL_DEBUG is
        refused)."""
        app = self._mail().app
        return AppMail(app, load_settings(app_config=config, testing=testing), config)

    @property
    def app(self) -> Flask | None:
        """Flask-Mail's ``mail.app``: the app given to the constructor, else None."""
        return self._app

    @property
    def backend(self) -> EmailBackend:
        return self._mail().state.backend

    def __getattr__(self, name: str) -> Any:
        # Flask-Mail's and flask-mailman's Mail answer their state's attributes (mail.default_sender, ...).
        if name in STATE_ATTRIBUTES:
            return getattr(self._mail(), name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in STATE_ATTRIBUTES:  # mail.port = 2525 changes the current app's, as flask-mailman's Mail does
            setattr(self._mail(), name, value)
            return
        super().__setattr__(name, value)

    # Flask-Mail's API, on the current app

    def send(self, message: Any) -> SendResult | None:
        """Send one message: this package's or Flask-Mail's ``Message``, or a flask-mailman ``EmailMessage``.
        Returns the result (each recipient's outcome, the Message-ID), also left on it as ``gateway_status``."""
        return self._mail().send(message)

    def send_message(self, *args: Any, **kwargs: Any) -> SendResult | None:
        return self._mail().send_message(*args, **kwargs)

    def connect(self) -> Connection:
        return self._mail().connect()

    @contextmanager
    def record_messages(self) -> Iterator[list[Any]]:
        """The messages the app sends during the block (the current app, else the one given to the
        constructor); for a ``MailGateway()`` outside any app context, every app's, as Flask-Mail records."""
        if self._current_app() is not None:
            with self._mail().record_messages() as outbox:
                yield outbox
            return
        recorded: list[Any] = []

        def record(app: Flask, message: Any) -> None:
            recorded.append(message)

        with email_dispatched.connected_to(record):
            yield recorded

    def send_template(self, template: str, recipients: Any = None, variables: dict[str, Any] | None = None, *,
                      sender: Any = None, **fields: Any) -> Any:
        """A stored template (or a file of GATEWAY_TEMPLATES_DIR) sent with ``variables``; see
        ``AppMail.send_template``."""
        return self._mail().send_template(template, recipients, variables, sender=sender, **fields)

    # flask-mailman's API, on the current app

    def get_connection(self, backend: Any = None, fail_silently: bool = False, **options: Any) -> Connection:
        return self._mail().get_connection(backend, fail_silently, **options)

    def send_mail(self, subject: str, message: str, from_email: Any = None, recipient_list: Any = None,
                  **kwargs: Any) -> int:
        return self._mail().send_mail(subject, message, from_email, recipient_list, **kwargs)

    def send_mass_mail(self, datatuple: Iterable[tuple[Any, ...]], **kwargs: Any) -> int:
        return self._mail().send_mass_mail(datatuple, **kwargs)

    @property
    def outbox(self) -> SentMail:
        return self._mail().outbox

    @outbox.setter
    def outbox(self, messages: Iterable[Any]) -> None:
        """``mail.outbox = []`` empties it; the messages of a list given are kept as ``append`` keeps them."""
        self._mail().outbox = messages
