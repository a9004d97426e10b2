"""``AppMail``: what ``MailGateway(app)`` registers as ``app.extensions["mail"]`` and ``["mailman"]``.

Flask-Mail's and flask-mailman's message classes read their defaults from those entries (``default_sender``,
``default_charset``, ``ascii_attachments``, ``use_localtime``) and flask-mailman's ``EmailMessage.send()`` asks
``extensions["mailman"].get_connection()`` for a connection. One object answers both, under both extensions'
names, and sends through the app's gateway: the anchors' code, and their message classes, keep working.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import PurePath
from typing import Any

from flask import Flask, current_app, has_app_context
from flask_mailman import EmailMessage, EmailMultiAlternatives
from pydantic import SecretStr

from mail_gateway.backends.kept import kept_mail_of
from mail_gateway.extension.connection import Connection
from mail_gateway.extension.connection_senders import backend_name, connection_sender, default_backend
from mail_gateway.extension.flask_mail import Message, email_dispatched
from mail_gateway.extension.message_checks import configured_sender
from mail_gateway.extension.sent_email import SentMail
from mail_gateway.extension.settable import change_setting, refuse_fixed, refuse_half_pair
from mail_gateway.mail.result import QueuedResult, SendResult
from mail_gateway.runtime import RUNTIME_KEY, Runtime
from mail_gateway.settings import GatewaySettings
from mail_gateway.settings.core import name_and_address

STATE_KEY = RUNTIME_KEY  # the app's runtime, which the extension registers
# The anchors' state attributes that are settings: readable, and settable (``settable``) as in flask-mailman.
_SETTINGS = {"server": "mail_server", "port": "mail_port", "username": "mail_username", "use_tls": "mail_use_tls",
             "use_ssl": "mail_use_ssl", "timeout": "mail_timeout", "ssl_keyfile": "mail_ssl_keyfile",
             "ssl_certfile": "mail_ssl_certfile", "file_path": "mail_file_path", "max_emails": "mail_pool_max_messages",
             "password": "mail_password"}
_FIXED = {"use_localtime", "debug"}  # refused (or, debug off, allowed) by settable.refuse_fixed


class AppMail:
    """One app's mail, with Flask-Mail's and flask-mailman's methods and state attributes. Those read when a
    message is built or sent can be changed at run time, as in the anchors: ``default_sender``,
    ``default_charset``, ``ascii_attachments``, ``backend`` (what ``get_connection()`` uses by default) and
    ``suppress``; so can the settings (``port``, ``password``...), for the connections made after the change
    (``settable``)."""

    use_localtime = True  # the Date header always carries the local time and its offset
    debug = 0  # MAIL_DEBUG is refused by the settings

    def __init__(self, app: Flask, settings: GatewaySettings, config: Mapping[str, Any] | None = None) -> None:
        """``config``: the app's config (default) or the one given to ``init_mail``, for reading values back."""
        object.__setattr__(self, "app", app)
        object.__setattr__(self, "_held", {})  # a half-set client certificate pair (settable)
        object.__setattr__(self, "_suppressed", None)  # as the settings say, until ``suppress`` is assigned
        given = (app.config if config is None else config).get("MAIL_DEFAULT_SENDER")
        self.default_sender = configured_sender(given, settings.mail_default_sender)
        self.default_charset = settings.mail_default_charset
        self.ascii_attachments = settings.mail_ascii_attachments
        self.backend = settings.backend_name

    @property
    def state(self) -> Any:
        return self.app.extensions[STATE_KEY]

    def __call__(self, app: Flask | None = None) -> Any:
        # mail.state(app) is the runtime, as MailGateway.state(app) is; mail.state alone is this object.
        return Runtime.of(app) if app is not None else self.state

    @property
    def suppress(self) -> bool:
        """Whether what is sent stays in memory (``mail.outbox``, ``record_messages()``) instead of reaching a
        server: as TESTING or MAIL_SUPPRESS_SEND say, until assigned (``mail.state.suppress = True``)."""
        if self._suppressed is None:
            return self.state.sender.backend.name == "memory"
        return backend_name(self._default_backend()) == "memory"

    def _default_backend(self) -> Any:
        return default_backend(self.state.settings, self.backend, self._suppressed)

    def __getattr__(self, name: str) -> Any:
        if name == "timeout" and "mail_timeout" not in self.state.settings.model_fields_set:
            return None  # unset, as in flask-mailman (Connection.timeout says why)
        if name in _SETTINGS:
            held = self.__dict__.get("_held", {})
            value = held[_SETTINGS[name]] if _SETTINGS[name] in held else getattr(self.state.settings, _SETTINGS[name])
            # As the application set them: the password for its own code (never logged), paths as strings.
            if isinstance(value, SecretStr):
                return value.get_secret_value()
            return str(value) if isinstance(value, PurePath) else value
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "suppress":
            # Flask-Mail's tests set it in their fixtures: from the next connection on, mail stays in memory or
            # reaches the backend again; a get_connection() naming a backend still gets that one.
            object.__setattr__(self, "_suppressed", bool(value))
            return
        if name in _FIXED:
            refuse_fixed(name, value)
            return
        if name in _SETTINGS:
            change_setting(self.state, name, _SETTINGS[name], value, self._held)
            return
        super().__setattr__(name, value)

    # -- Flask-Mail ---------------------------------------------------------------------------------------

    def send(self, message: Any) -> SendResult | None:
        """Send one message (this package's or Flask-Mail's ``Message``, or a flask-mailman ``EmailMessage``);
        the result, also left on the message as ``gateway_status``."""
        # Not ``with connect()``, whose open() dials: a message sent alone connects on the send path, which
        # retries and logs it.
        return self.connect().send(message)

    def send_message(self, *args: Any, **kwargs: Any) -> SendResult | None:
        """``send(Message(*args, **kwargs))``."""
        return self.send(Message(*args, **kwargs))

    def connect(self) -> Connection:
        """A connection to the app's backend; ``with mail.connect() as conn:`` sends many on the same one."""
        return self.get_connection()

    @contextmanager
    def record_messages(self) -> Iterator[list[Any]]:
        """The messages this app sends during the block, as the objects that were sent."""
        outbox: list[Any] = []

        def record(app: Flask, message: Any) -> None:
            outbox.append(message)

        with email_dispatched.connected_to(record, sender=self.app):
            yield outbox

    # -- templates ----------------------------------------------------------------------------------------

    def send_template(self, template: str, recipients: Any = None, variables: Mapping[str, Any] | None = None, *,
                      sender: Any = None, **fields: Any) -> SendResult | QueuedResult:
        """Send a stored template (or a file of GATEWAY_TEMPLATES_DIR) rendered with ``variables``. ``recipients``
        and ``sender`` are Flask-Mail's names (``sender`` defaults to ``default_sender``); any other field of
        ``POST /v1/messages`` may be given too (``cc``, ``bcc``, ``reply_to``, ``attachments``, ``headers``...).
        Raises ``InvalidMessageError`` (``TemplateError`` when the template cannot be rendered) or a
        ``DeliveryError``, as the HTTP API answers them."""
        payload = {**fields, "template": template, "variables": dict(variables or {})}
        payload["to"] = recipients if recipients is not None else fields.get("to", [])
        sender = sender if sender is not None else self.default_sender
        if isinstance(sender, tuple | list):  # Flask-Mail's (name, address)
            sender = name_and_address(*sender)
        if sender is not None:
            payload["from"] = sender
        runtime = connection_sender(self.state, self._default_backend(), {}).sender  # honours ``suppress``
        return runtime.send(runtime.parse(payload), via="library")

    # -- flask-mailman ------------------------------------------------------------------------------------

    def get_connection(self, backend: Any = None, fail_silently: bool = False, **options: Any) -> Connection:
        """A connection through the app's backend, or through ``backend`` (a flask-mailman or gateway name, a
        dotted path or a class) and per-connection ``options``; see ``mail_gateway.extension.connection_senders``."""
        refuse_half_pair(self.state, self._held)
        chosen = connection_sender(self.state, backend if backend is not None else self._default_backend(), options)
        return Connection(self.app, self, chosen.sender, fail_silently=fail_silently, owned=chosen.owned)

    def send_mail(self, subject: str, message: str, from_email: Any = None, recipient_list: Any = None,
                  fail_silently: bool = False, auth_user: str | None = None, auth_password: str | None = None,
                  connection: Any = None, html_message: str | None = None) -> int:
        connection = connection or self.get_connection(username=auth_user, password=auth_password,
                                                       fail_silently=fail_silently)
        with self._current():
            mail = EmailMultiAlternatives(subject, message, from_email, recipient_list, connection=connection)
        if html_message:
            mail.attach_alternative(html_message, "text/html")
        return mail.send()

    def send_mass_mail(self, datatuple: Iterable[tuple[Any, ...]], fail_silently: bool = False,
                       auth_user: str | None = None, auth_password: str | None = None, connection: Any = None) -> int:
        connection = connection or self.get_connection(username=auth_user, password=auth_password,
                                                       fail_silently=fail_silently)
        with self._current():
            messages = [EmailMessage(subject, body, sender, recipients, connection=connection)
                        for subject, body, sender, recipients in datatuple]
        return connection.send_messages(messages)

    @contextmanager
    def _current(self) -> Iterator[None]:
        """This app as the current one, for flask-mailman's message classes, which read the default sender from
        ``current_app``: ``MailGateway(app).send_mail`` works outside an app context, as ``send`` does."""
        if has_app_context() and current_app._get_current_object() is self.app:  # type: ignore[attr-defined]
            yield
            return
        with self.app.app_context():
            yield

    @property
    def outbox(self) -> SentMail:
        """What the backend kept (memory, file, or console in development), oldest first, as message objects."""
        senders = (self.state.sender, self.state.alternates.get("memory"))
        for sender in senders[::-1] if self._suppressed else senders:  # where suppressed mail went, first
            kept = kept_mail_of(sender.backend) if sender is not None else None
            if kept is not None:
                return SentMail(kept)
        raise RuntimeError(f"mail.outbox lists what the memory backend kept, and this app sends with "
                           f"{self.state.sender.backend.name}; set TESTING=True or MAIL_BACKEND=memory")

    @outbox.setter
    def outbox(self, messages: Iterable[Any]) -> None:
        # ``extensions["mailman"].outbox = []`` is how fixtures written for flask-mailman empty its list.
        given, outbox = list(messages), self.outbox  # read first: the kept mail itself may be what is given
        outbox.clear()
        for message in given:
            outbox.append(message)
