"""The message objects of the three APIs, as the flask-mailman message the one send path renders.

A flask-mailman (or Django-style) ``EmailMessage`` goes as it is. A Flask-Mail ``Message``, this package's or
Flask-Mail's own class, is described to flask-mailman (``prepare``): its addresses, bodies, attachments and
headers, with Flask-Mail's checks (a sender, recipients, no line breaks in headers) raising what Flask-Mail
raised. Each send has its own Message-ID and Date; as in Flask-Mail they are left on the object
(``msgId``, ``date``) once it is sent, and a second send of the same object gets fresh ones.
"""

from __future__ import annotations

import copy
import re
import time
import unicodedata
from dataclasses import dataclass
from email.utils import formatdate, parseaddr
from typing import Any

from flask import current_app, has_app_context
from flask_mailman import EmailMessage, EmailMultiAlternatives

from mail_gateway.errors import InvalidMessageError
from mail_gateway.extension.message_errors import IncompleteMessageError, bad_header_error
from mail_gateway.mail.addresses import address_domain
from mail_gateway.mail.rendering import RenderedMessage, new_message_id, render_email
from mail_gateway.mail.serialize import base64_part
from mail_gateway.settings.core import name_and_address

_FOLD = re.compile(r"\r\n(?=[ \t])")
_SENT = "_mail_gateway_sent"  # (Message-ID, Date, whether the gateway chose the Date) of the last send


def address_text(address: str | tuple[str, str]) -> str:
    """A Flask-Mail address, a string or a ``(name, address)`` pair, as one string."""
    return name_and_address(*address) if isinstance(address, tuple) else address


def sender_domain(sender: str | None) -> str:
    return address_domain(parseaddr(sender)[1]) if sender else "localhost"


def is_flask_mail_message(message: Any) -> bool:
    return hasattr(message, "send_to") and hasattr(message, "sender")


def ascii_filename(name: str) -> str:
    """``MAIL_ASCII_ATTACHMENTS``: accents dropped, other non-ASCII characters removed, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").split())


@dataclass(frozen=True)
class Prepared:
    email: Any  # the flask-mailman message to render
    identity: tuple[str, float, bool] | None = None  # a Flask-Mail message's Message-ID and Date for this send


def _check(message: Any, sender: str | None) -> None:
    if not message.send_to:
        raise IncompleteMessageError("the message has no recipients", field="recipients")
    if not sender:
        raise IncompleteMessageError("the message has no sender and MAIL_DEFAULT_SENDER is not set", field="sender")
    if message.has_bad_headers():
        raise bad_header_error("a header (subject, sender, a recipient or Reply-To) has a line break", "headers")
    for attachment in message.attachments:
        fields = [attachment.filename or "", *attachment.headers, *attachment.headers.values()]
        if any("\r" in text or "\n" in text for text in fields):
            raise bad_header_error("an attachment's file name or header has a line break", "attachments")
    if message.mail_options or message.rcpt_options:
        raise InvalidMessageError("the gateway chooses the ESMTP options of MAIL FROM and RCPT TO itself; "
                                  "remove mail_options and rcpt_options", field="mail_options")


def _identity(message: Any, sender: str | None) -> tuple[str, float, bool]:
    last = getattr(message, _SENT, None)
    msg_id = message.msgId
    if last is not None and msg_id == last[0]:
        msg_id = new_message_id(sender_domain(sender))
    assigned = message.date is None or (last is not None and last[2] and message.date == last[1])
    return msg_id, time.time() if assigned else message.date, assigned


def _attach(email: Any, attachment: Any, ascii_names: bool) -> None:
    filename = ascii_filename(attachment.filename) if ascii_names and attachment.filename else attachment.filename
    if attachment.disposition == "attachment" and not attachment.headers:
        email.attach(filename, attachment.data, attachment.content_type)
        return
    # Inline parts and extra headers (a Content-ID for an embedded image) are beyond flask-mailman's attach().
    data = attachment.data.encode(email.encoding) if isinstance(attachment.data, str) else attachment.data
    part = base64_part(data, attachment.content_type)
    part.add_header("Content-Disposition", attachment.disposition, **({"filename": filename} if filename else {}))
    for name, value in attachment.headers.items():
        part.add_header(name, value)
    email.attach(part)


def _as_mailman(message: Any, sender: str, identity: tuple[str, float, bool], charset: str, ascii_names: bool,
                envelope_from: str | None) -> Any:
    headers = dict(message.extra_headers or {})
    given = {name.lower() for name in headers}
    if "message-id" not in given:
        headers["Message-ID"] = identity[0]
    if "date" not in given:
        headers["Date"] = formatdate(identity[1], localtime=True)
    if envelope_from:
        headers["From"] = sender
    alternatives = dict(message.alts)
    html_only = message.body is None and list(alternatives) == ["html"]
    body = alternatives.pop("html") if html_only else message.body or ""
    email = (EmailMessage if html_only else EmailMultiAlternatives)(
        subject=_FOLD.sub("", message.subject or ""), body=body, headers=headers,
        from_email=address_text(envelope_from) if envelope_from else sender,
        to=[address_text(a) for a in message.recipients], cc=[address_text(a) for a in message.cc],
        bcc=[address_text(a) for a in message.bcc],
        reply_to=[address_text(message.reply_to)] if message.reply_to else None)
    if html_only:
        email.content_subtype = "html"
    for subtype, content in alternatives.items():
        email.attach_alternative(content, f"text/{subtype}")
    email.encoding = message.charset or charset
    for attachment in message.attachments:
        _attach(email, attachment, ascii_names)
    return email


def prepare(message: Any, *, charset: str = "utf-8", ascii_attachments: bool = False,
            envelope_from: str | None = None, default_sender: str | None = None) -> Prepared:
    """What the send path renders for ``message``; raises ``InvalidMessageError`` (and its Flask-Mail kinds).

    ``default_sender`` is for a Flask-Mail message built outside an app context, where Flask-Mail could not
    have read ``MAIL_DEFAULT_SENDER``."""
    if not is_flask_mail_message(message):
        lists = (getattr(message, name, None) or [] for name in ("to", "cc", "bcc", "reply_to"))
        addresses = [getattr(message, "from_email", None) or "", *(a for each in lists for a in each)]
        if any("\r" in str(a) or "\n" in str(a) for a in addresses):
            raise bad_header_error("an address (from, to, cc, bcc or reply_to) has a line break", "address")
        if getattr(message, "encoding", None) is None and charset.lower() not in ("utf-8", "utf8"):
            message = copy.copy(message)  # MAIL_DEFAULT_CHARSET, without changing the caller's object
            message.encoding = charset
        return Prepared(message)
    sender = address_text(message.sender) if message.sender else default_sender
    _check(message, sender)
    identity = _identity(message, sender)
    return Prepared(_as_mailman(message, str(sender), identity, charset, ascii_attachments, envelope_from), identity)


def mark_sent(message: Any, prepared: Prepared, result: Any) -> None:
    """After a successful send: the result on the object (as django-anymail's ``anymail_status``), and a
    Flask-Mail message's ``msgId`` and ``date`` as sent."""
    message.gateway_status = result
    if prepared.identity is not None:
        message.msgId, message.date = prepared.identity[:2]
        setattr(message, _SENT, prepared.identity)


def rendered(message: Any) -> RenderedMessage:
    """``message`` as the current app's gateway would send it now."""
    mail = current_app.extensions.get("mail") if has_app_context() else None
    charset, ascii_names = getattr(mail, "default_charset", "utf-8"), getattr(mail, "ascii_attachments", False)
    return render_email(prepare(message, charset=charset, ascii_attachments=bool(ascii_names),
                                default_sender=getattr(mail, "default_sender", None)).email)
