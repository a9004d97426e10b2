"""mail-gateway: one HTTP API, an SMTP ingress and a Flask extension in front of pluggable mail backends.

The public API::

    from mail_gateway import MailGateway, create_app, GatewaySettings

and, for apps written for Flask-Mail or flask-mailman, their names: ``Mail`` (``MailGateway``), ``Message``,
``Attachment``, ``email_dispatched``, ``BadHeaderError``, ``EmailMessage`` and ``EmailMultiAlternatives``, so
``from flask_mail import Mail, Message`` becomes ``from mail_gateway import Mail, Message``.

Names are imported on first use, so importing a sub-package (``mail_gateway.settings``, or the pytest plugin
that pytest loads in every run) does not load Flask and the whole gateway with it.

The package's floors, each importing only those below it: ``errors`` (imports nothing) → ``settings`` →
``mail`` (addresses, composing, rendering) → ``backends`` → ``sending`` (the one send path) → the features:
``extension`` and ``app``, ``http``, ``outbox``, ``ingress``, ``cli``, ``testing``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask_mailman import EmailMessage, EmailMultiAlternatives

    from mail_gateway.app import create_app
    from mail_gateway.extension import MailGateway
    from mail_gateway.extension import MailGateway as Mail
    from mail_gateway.extension.flask_mail import Attachment, Message, email_dispatched
    from mail_gateway.extension.message_errors import BadHeaderError
    from mail_gateway.settings import GatewaySettings

# name: (module, name there)
_PUBLIC = {
    "MailGateway": ("mail_gateway.extension", "MailGateway"),
    "Mail": ("mail_gateway.extension", "MailGateway"),
    "create_app": ("mail_gateway.app", "create_app"),
    "GatewaySettings": ("mail_gateway.settings", "GatewaySettings"),
    "Message": ("mail_gateway.extension.flask_mail", "Message"),
    "Attachment": ("mail_gateway.extension.flask_mail", "Attachment"),
    "email_dispatched": ("mail_gateway.extension.flask_mail", "email_dispatched"),
    "BadHeaderError": ("mail_gateway.extension.message_errors", "BadHeaderError"),
    "EmailMessage": ("flask_mailman", "EmailMessage"),
    "EmailMultiAlternatives": ("flask_mailman", "EmailMultiAlternatives"),
}
__all__ = ["Attachment", "BadHeaderError", "EmailMessage", "EmailMultiAlternatives", "GatewaySettings", "Mail",
           "MailGateway", "Message", "create_app", "email_dispatched"]


def __getattr__(name: str) -> Any:
    found = _PUBLIC.get(name)
    if found is None:
        raise AttributeError(f"module 'mail_gateway' has no attribute {name!r}")
    if name == "create_app":  # the HTTP API: its packages come with the server extra
        from mail_gateway.extras import require

        require("server", "mail_gateway.create_app (the HTTP API)")
    value = getattr(import_module(found[0]), found[1])
    globals()[name] = value
    return value
