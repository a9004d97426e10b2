"""Flask-Mail's API on the gateway: ``Message``, ``Attachment`` and the ``email_dispatched`` signal.

With ``from mail_gateway import MailGateway as Mail, Message`` an app written for Flask-Mail runs unchanged: the
constructor takes Flask-Mail's arguments in Flask-Mail's order, and the attributes are Flask-Mail's. Sending
goes through the gateway's one send path (``mail_gateway.extension.connection``), which also takes Flask-Mail's own
``Message`` objects; ``mail_gateway.extension.message_objects`` turns either into the message the send path renders.
"""

from __future__ import annotations

import mimetypes
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import blinker
from flask import current_app, has_app_context

from mail_gateway.extension.message_checks import address_list, address_text, has_bad_headers, sender_text
from mail_gateway.extension.message_objects import rendered, sender_domain
from mail_gateway.mail.rendering import new_message_id

if TYPE_CHECKING:
    from mail_gateway.extension.connection import Connection
    from mail_gateway.mail.result import SendResult

signals = blinker.Namespace()
email_dispatched = signals.signal("email-dispatched", doc="""Sent after each message the app sends through the
gateway as a library, with the app as sender and ``message=`` the message object, as Flask-Mail sends it; also
when the backend only keeps mail (memory), as Flask-Mail sends it when TESTING suppresses sending.""")

Address = str | tuple[str, str]


def dispatched(app: Any, message: Any) -> None:
    """``email_dispatched`` for a message sent; also Flask-Mail's own signal once Flask-Mail is loaded, to which
    code still importing ``email_dispatched`` from ``flask_mail`` (an app's, or another extension's) connects."""
    email_dispatched.send(app, message=message)
    flask_mail = sys.modules.get("flask_mail")
    if flask_mail is not None:
        flask_mail.email_dispatched.send(app, message=message)


def _default_sender() -> Address | None:
    if has_app_context() and "mail" in current_app.extensions:
        return current_app.extensions["mail"].default_sender
    return None


class Attachment:
    """One attachment: ``data`` (bytes or text), its ``content_type`` (guessed from ``filename`` when not
    given), its ``disposition`` (``attachment`` or ``inline``) and extra MIME ``headers`` such as Content-ID."""

    def __init__(self, filename: str | None = None, content_type: str | None = None, data: str | bytes | None = None,
                 disposition: str | None = None, headers: dict[str, str] | None = None) -> None:
        if data is None:
            raise ValueError("The 'data' argument is required.")
        if content_type is None and filename is not None:
            content_type = mimetypes.guess_type(filename)[0]
        if content_type is None:
            content_type = "text/plain" if isinstance(data, str) else "application/octet-stream"
        self.filename = filename
        self.content_type = content_type
        self.data = data
        self.disposition = disposition or "attachment"
        self.headers = headers or {}


class Message:
    """A message as Flask-Mail describes it. ``sender`` defaults to ``MAIL_DEFAULT_SENDER``; ``date`` (seconds
    since the epoch) and ``msgId`` are set when it is sent, and a message sent again gets fresh ones.
    ``gateway_status`` holds the last send's ``SendResult`` (each recipient's outcome, the Message-ID)."""

    def __init__(self, subject: str = "", recipients: list[Address] | None = None, body: str | None = None,
                 html: str | None = None, alts: dict[str, str] | Iterable[tuple[str, str]] | None = None,
                 sender: Address | None = None, cc: list[Address] | None = None, bcc: list[Address] | None = None,
                 attachments: list[Attachment] | None = None, reply_to: Address | None = None,
                 date: float | None = None, charset: str | None = None, extra_headers: dict[str, str] | None = None,
                 mail_options: list[str] | None = None, rcpt_options: list[str] | None = None) -> None:
        sender = sender or _default_sender()
        # A pair reads back as Flask-Mail's text, 'J. Doe <jd@example.com>', and is written quoted (``PairText``).
        self.sender: str | None = sender_text(sender) if sender else None
        self.recipients: list[Address] = address_list(recipients, "recipients")
        self.subject = subject
        self.body = body
        self.alts: dict[str, str] = dict(alts or {})
        if html is not None:
            self.html = html
        self.cc: list[Address] = address_list(cc, "cc")
        self.bcc: list[Address] = address_list(bcc, "bcc")
        self.attachments: list[Attachment] = list(attachments or [])
        self.reply_to = reply_to
        self.date = date
        self.charset = charset
        self.extra_headers = extra_headers
        self.mail_options: list[str] = list(mail_options or [])
        self.rcpt_options: list[str] = list(rcpt_options or [])
        self._msg_id: str | None = None
        self.gateway_status: SendResult | None = None

    @property
    def msgId(self) -> str:  # noqa: N802 - Flask-Mail's name
        if self._msg_id is None:
            self._msg_id = new_message_id(sender_domain(address_text(self.sender) if self.sender else None))
        return self._msg_id

    @msgId.setter
    def msgId(self, value: str) -> None:  # noqa: N802
        self._msg_id = value

    @property
    def html(self) -> str | None:
        return self.alts.get("html")

    @html.setter
    def html(self, value: str | None) -> None:
        if value is None:
            self.alts.pop("html", None)
        else:
            self.alts["html"] = value

    @property
    def send_to(self) -> set[Address]:
        return {*self.recipients, *self.cc, *self.bcc}

    def add_recipient(self, recipient: Address) -> None:
        self.recipients.append(recipient)

    def attach(self, filename: str | None = None, content_type: str | None = None, data: str | bytes | None = None,
               disposition: str | None = None, headers: dict[str, str] | None = None) -> None:
        self.attachments.append(Attachment(filename, content_type, data, disposition, headers))

    def has_bad_headers(self) -> bool:
        """A line break or other control character in the sender, a recipient or Reply-To, or in the subject
        other than folding: what sending raises ``BadHeaderError`` for."""
        return has_bad_headers(self)

    is_bad_headers = has_bad_headers  # Flask-Mail's older name, which it keeps as a deprecated alias

    def send(self, connection: Connection) -> Any:
        return connection.send(self)

    def as_bytes(self) -> bytes:
        """The message as the gateway would send it now (with a Date of now, when it has none yet); once sent, with
        the ``msgId`` and ``date`` it was sent with, as Flask-Mail shows them. One without recipients yet renders
        too, for a preview, as in Flask-Mail; sending it raises."""
        return rendered(self).data

    def as_string(self) -> str:
        return self.as_bytes().decode("utf-8", errors="replace")

    def __bytes__(self) -> bytes:
        return self.as_bytes()

    def __str__(self) -> str:
        return self.as_string()
