"""The Flask extension, for the gateway used as a library inside a Flask app, and all of its compatibility with
Flask-Mail and flask-mailman: no other part of the gateway knows those libraries.

``MailGateway`` (``core``) reads the app's configuration and registers the gateway's send path as the app's
mail. It speaks Flask-Mail's API (``flask_mail``: ``Message``, ``Attachment``, ``send``, ``connect``,
``record_messages``) and flask-mailman's (``app_mail``, ``connection``: ``send_mail``, ``get_connection``,
``outbox``), renders their message objects (``message_objects``), records what was sent (``sent_email``),
raises errors their users can catch the old way (``smtplib_errors``, ``message_errors``) and understands
flask-mailman's backend names and classes (``backend_names``, registered with the settings on import).

``MailGateway`` is loaded on first use, so the commands can load the backend names without Flask.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from mail_gateway.extension import backend_names  # noqa: F401 - registers flask-mailman's backend names

if TYPE_CHECKING:
    from mail_gateway.extension.core import STATE_KEY, MailGateway

__all__ = ["STATE_KEY", "MailGateway"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module("mail_gateway.extension.core"), name)
    globals()[name] = value
    return value
