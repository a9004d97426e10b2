"""The message objects of the three APIs, as the request the HTTP API validates and the one composer writes.

A flask-mailman (or Django-style) ``EmailMessage`` is read by ``mail_gateway.mail.objects``. A Flask-Mail
``Message``, this package's or Flask-Mail's own class, is read here (``prepare``) into the same request — its
addresses, bodies, attachments and headers — with Flask-Mail's checks (a sender, recipients, no line breaks in
headers) raising what Flask-Mail raised. Each send has its own Message-ID and Date; as in Flask-Mail they are
left on the object (``msgId``, ``date``) once it is sent, and a second send of the same object gets fresh ones.
"""

from __future__ import annotations

import mimetypes
import re
import time
import unicodedata
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr, parseaddr
from typing import Any

from flask import current_app, has_app_context

from mail_gateway.errors import HeaderInjectionError, InvalidMessageError
from mail_gateway.extension.message_checks import (
    address_list,
    address_text,
    check_headers,
    checked_message_id,
    given_sender,
    message_text,
)
from mail_gateway.extension.message_errors import IncompleteMessageError, bad_header_error
from mail_gateway.mail.addresses import address_domain
from mail_gateway.mail.charsets import body_text, checked_charset
from mail_gateway.mail.compose import Draft
from mail_gateway.mail.objects import attachment_content, draft_from_email, library_draft
from mail_gateway.mail.rendering import RenderedMessage, message_date, new_message_id

_FOLD = re.compile(r"\r\n(?=[ \t])")
_SENT = "_mail_gateway_sent"  # (Message-ID, Date, whether the gateway chose the Date) of the last send


def sender_domain(sender: str | None) -> str:
    return address_domain(parseaddr(sender)[1]) if sender else "localhost"


def flask_mail_envelope(sender: str, recipients: Any) -> tuple[str, list[str]] | None:
    """The addresses Flask-Mail gave its host's ``sendmail()``: with their names, a non-ASCII one as an RFC 2047
    encoded word (smtplib sends the addresses alone). None when an address itself is not ASCII: the gateway's
    envelope form is the one smtplib can send."""
    given = [sender, *map(address_text, recipients)]
    if not all(parseaddr(address)[1].isascii() for address in given):
        return None
    parsed = [parseaddr(address) for address in given]
    shown = [formataddr((Header(name, "utf-8").encode(), spec)) if name else spec for name, spec in parsed]
    return shown[0], shown[1:]


def is_flask_mail_message(message: Any) -> bool:
    return hasattr(message, "send_to") and hasattr(message, "sender")


def ascii_filename(name: str) -> str:
    """``MAIL_ASCII_ATTACHMENTS``: accents dropped, other non-ASCII characters removed, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").split())


@dataclass(frozen=True)
class Prepared:
    draft: Draft  # what the one composer writes for this send
    identity: tuple[str, float, bool] | None = None  # a Flask-Mail message's Message-ID and Date for this send

    def compose(self) -> RenderedMessage:
        return self.draft.compose()


def _check(message: Any, sender: str | None, *, sending: bool) -> None:
    for field in ("recipients", "cc", "bcc"):
        address_list(getattr(message, field), field)
    if sending and not message.send_to:
        raise IncompleteMessageError("the message has no recipients", field="recipients")
    if not sender:
        raise IncompleteMessageError("the message has no sender and MAIL_DEFAULT_SENDER is not set", field="sender")
    check_headers(message, sender)
    for attachment in message.attachments:
        fields = [attachment.filename or "", *attachment.headers, *attachment.headers.values()]
        if any("\r" in text or "\n" in text for text in fields):
            raise bad_header_error("an attachment's file name or header has a line break", "attachments")
    if message.mail_options or message.rcpt_options:
        raise InvalidMessageError("the gateway chooses the ESMTP options of MAIL FROM and RCPT TO itself; "
                                  "remove mail_options and rcpt_options", field="mail_options")


def _identity(message: Any, sender: str | None, *, sending: bool) -> tuple[str, float, bool]:
    """The Message-ID and Date of a send, and whether the gateway chose that Date. A send after a send is a new
    message, so it gets fresh ones; rendering only shows the ones on the object, after a send those sent."""
    last = getattr(message, _SENT, None) if sending else None
    msg_id = checked_message_id(message.msgId)
    if last is not None and msg_id == last[0]:
        msg_id = new_message_id(sender_domain(sender))
    assigned = message.date is None or (last is not None and last[2] and message.date == last[1])
    return msg_id, time.time() if assigned else message.date, assigned


def _attachment(attachment: Any, charset: str, ascii_names: bool, index: int) -> dict[str, Any]:
    filename = ascii_filename(attachment.filename) if ascii_names and attachment.filename else attachment.filename
    content_type = attachment.content_type or (mimetypes.guess_type(filename)[0] if filename else None)
    data, content_type = attachment_content(attachment.data, content_type, charset, f"attachments[{index}].data")
    found: dict[str, Any] = {"filename": filename, "content": data, "content_type": content_type,
                             "disposition": attachment.disposition}
    for name, value in attachment.headers.items():
        if name.lower() != "content-id":  # the one header a part of the request carries
            raise InvalidMessageError(f"an attachment's header {name!r} is not one the gateway writes; give only "
                                      "Content-ID", field=f"attachments[{index}].headers")
        found["content_id"] = str(value).strip().strip("<>")
    return found


def _flask_mail_draft(message: Any, sender: str, identity: tuple[str, float, bool], charset: str,
                      ascii_names: bool, envelope_from: str | None, *, sending: bool = True) -> Draft:
    # Bytes are read in the message's charset, the one Flask-Mail encoded text in and passed bytes on as given.
    alternatives = {subtype: body_text(message_text(content), charset,
                                       "html" if subtype == "html" else f"alts[{subtype!r}]")
                    for subtype, content in dict(message.alts).items()}
    body = body_text(message_text(message.body), charset, "body")
    payload: dict[str, Any] = {
        "from": sender, "subject": _FOLD.sub("", message_text(message.subject) or ""),
        "to": [address_text(a, "recipients") for a in message.recipients],
        "cc": [address_text(a, "cc") for a in message.cc], "bcc": [address_text(a, "bcc") for a in message.bcc],
        "reply_to": [address_text(message.reply_to, "reply_to")] if message.reply_to else [],
        "text": body if body is not None or "html" not in alternatives else None,
        "html": alternatives.pop("html", None),
        "alternatives": [{"content": content, "content_type": f"text/{subtype}"}
                         for subtype, content in alternatives.items()],
        "attachments": [_attachment(a, charset, ascii_names, i) for i, a in enumerate(message.attachments)]}
    if payload["text"] is None and payload["html"] is None and not payload["alternatives"]:
        payload["text"] = ""
    if not sending and not (payload["to"] or payload["cc"] or payload["bcc"]):
        # Only rendered (as_string() of a preview, as Flask-Mail allows): the request wants a recipient, and a Bcc
        # is written nowhere in the message, so the sender there gives the bytes of a message without recipients.
        payload["bcc"] = [sender]
    return library_draft(payload, dict(message.extra_headers or {}), envelope_from=envelope_from, charset=charset,
                         message_id=identity[0], date=message_date(identity[1]))


def prepare(message: Any, *, charset: str = "utf-8", ascii_attachments: bool = False,
            envelope_from: str | None = None, default_sender: str | None = None, sending: bool = True) -> Prepared:
    """What the send path composes for ``message``; raises ``InvalidMessageError`` (and its Flask-Mail kinds).

    ``default_sender`` is for a Flask-Mail message built outside an app context, where Flask-Mail could not
    have read ``MAIL_DEFAULT_SENDER``. ``sending=False`` renders it without making it a new send, and without
    recipients if it has none yet (``as_string()``), as Flask-Mail renders it; sending one still needs them."""
    try:
        if not is_flask_mail_message(message):
            return Prepared(draft_from_email(message, charset=charset))
        given = given_sender(message, default_sender)  # the default may be a (name, address) pair
        sender = address_text(given) if given else None
        _check(message, sender, sending=sending)
        identity = _identity(message, sender, sending=sending)
        charset = checked_charset(message.charset or charset, "charset")
        draft = _flask_mail_draft(message, str(sender), identity, charset, ascii_attachments, envelope_from,
                                  sending=sending)
        return Prepared(draft, identity)
    except HeaderInjectionError as exc:  # what Flask-Mail and flask-mailman raised: their BadHeaderError
        raise bad_header_error(str(exc), exc.field or "headers") from exc


def mark_sent(message: Any, prepared: Prepared, result: Any) -> None:
    """After a successful send: the result on the object (as django-anymail's ``anymail_status``), and a
    Flask-Mail message's ``msgId`` and ``date`` as sent."""
    message.gateway_status = result
    if prepared.identity is not None:
        message.msgId, message.date = prepared.identity[:2]
        setattr(message, _SENT, prepared.identity)


def rendered(message: Any) -> RenderedMessage:
    """``message`` as the current app's gateway would send it now; once sent, with the Message-ID and Date sent."""
    mail = current_app.extensions.get("mail") if has_app_context() else None
    charset, ascii_names = getattr(mail, "default_charset", "utf-8"), getattr(mail, "ascii_attachments", False)
    return prepare(message, charset=charset, ascii_attachments=bool(ascii_names),
                   default_sender=getattr(mail, "default_sender", None), sending=False).compose()
