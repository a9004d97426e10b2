"""Library message objects as the request the HTTP API validates: one model, one composer, one set of checks.

A Django-style ``EmailMessage`` (flask-mailman's, or any object with its attributes) is read here
(``draft_from_email``); a Flask-Mail ``Message`` is read by the Flask extension, which speaks that API, into the
same form (``library_draft``). Either way the message becomes a ``MessageRequest``, validated by the same field
types as a JSON body, and ``compose`` writes its bytes, so a message sent through ``mail.send`` and the same
message posted to ``/v1/messages`` arrive alike apart from their Message-ID and Date.

What only a library caller can say travels beside the request in a ``Draft``: a charset other than UTF-8, its
own Message-ID or Date, and an envelope other than its header fields (a ``From`` or ``To`` among
``extra_headers``, as Django and flask-mailman allow). Header fields that the request has fields for are moved
to those fields (``Subject``, ``X-Tags``, ``X-Metadata-*``); ``Bcc`` is never written into a message; the MIME
fields, which the composer writes from the parts, are refused rather than written twice.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from email.message import Message
from typing import Any

from mail_gateway.errors import HeaderInjectionError, InvalidMessageError
from mail_gateway.mail.addresses import header_addresses, parse_address, unique_recipients, with_name
from mail_gateway.mail.charsets import body_text, checked_charset
from mail_gateway.mail.compose import Draft
from mail_gateway.mail.fields import METADATA_PREFIX
from mail_gateway.mail.media_types import charset_of, with_charset
from mail_gateway.mail.rendering import RenderedMessage, checked_date, checked_message_id
from mail_gateway.mail.request import parse_message_request
from mail_gateway.mail.rfc5322 import check_header_text
from mail_gateway.mail.tags import split_tags

_ADDRESS_FIELDS = {"from": "from", "to": "to", "cc": "cc", "reply-to": "reply_to"}
_MIME_FIELDS = ("content-type", "mime-version", "content-transfer-encoding")
_BLIND_COPY = ("bcc", "resent-bcc")


def checked_text(value: Any, field: str, what: str) -> str:
    """``value`` as text, refused as header injection when it holds a line break or control character."""
    text = "" if value is None else str(value)
    try:
        check_header_text(text)
    except ValueError as exc:
        raise HeaderInjectionError(f"{what} {exc}", field=field) from exc
    return text


def _envelope(address: str, field: str) -> str:
    try:
        return parse_address(address).envelope
    except ValueError as exc:
        raise InvalidMessageError(str(exc), field=field) from exc


def _address_list(value: str, field: str) -> list[str]:
    found = header_addresses(value)
    if not found:
        raise InvalidMessageError(f"{value!r} is not a list of email addresses", field=field)
    return [with_name(name, spec) if name else spec for name, spec in found]


def _apply_header(payload: dict[str, Any], draft: dict[str, Any], name: str, value: str) -> None:
    lower, field = name.lower(), f"headers.{name}"
    if lower in _MIME_FIELDS:
        raise InvalidMessageError(f"header {name!r} is written by the gateway from the message's parts; remove it",
                                  field=field)
    if lower in _BLIND_COPY:
        return  # blind copies are never written into the message
    if lower == "message-id":
        draft["message_id"] = checked_message_id(value.strip(), field)
    elif lower == "date":
        draft["date"] = checked_date(value.strip(), field)
    elif lower == "subject":
        payload["subject"] = value
    elif lower == "from":
        payload["from"] = value
        draft["header_from"] = True
    elif lower in _ADDRESS_FIELDS:
        payload[_ADDRESS_FIELDS[lower]] = _address_list(value, field)
        draft["header_recipients"] = draft.get("header_recipients", False) or lower != "reply-to"
    elif lower == "x-tags":
        payload["tags"] = list(split_tags(value))
    elif lower.startswith(METADATA_PREFIX.lower()) and len(name) > len(METADATA_PREFIX):
        payload.setdefault("metadata", {})[name[len(METADATA_PREFIX):]] = value
    else:
        payload.setdefault("headers", {})[name] = value


def library_draft(payload: dict[str, Any], headers: Mapping[Any, Any], *, envelope_from: str | None = None,
                  charset: str = "utf-8", message_id: str | None = None, date: str | None = None) -> Draft:
    """The draft of a library message: ``payload`` as a JSON body would give it, its ``headers`` moved to their
    fields (see the module's docstring), validated as ``/v1/messages`` validates; ``InvalidMessageError``
    listing every problem. ``envelope_from``: a sender for the envelope alone (Flask-Mail's argument)."""
    payload, extra = dict(payload), {"message_id": message_id, "date": date}
    envelope = [*payload.get("to", []), *payload.get("cc", []), *payload.get("bcc", [])]
    mail_from = payload.get("from")
    for name, value in headers.items():
        _apply_header(payload, extra, checked_text(name, "headers", "a header name"),
                      checked_text(value, f"headers.{name}", f"header {name!r}"))
    try:
        request = parse_message_request(payload, default_sender=None)
    except InvalidMessageError as exc:  # a library caller reads the reasons in the message, not in a problem body
        raise InvalidMessageError("; ".join(f"{e.field}: {e.message}" for e in exc.errors), errors=exc.errors) from exc
    if envelope_from is None and extra.get("header_from") and mail_from:
        envelope_from = mail_from
    recipients = None
    if extra.get("header_recipients"):
        recipients = unique_recipients([_envelope(a, "to") for a in envelope])
    return Draft(request, charset=charset, message_id=extra["message_id"], date=extra["date"],
                 envelope_from=_envelope(envelope_from, "from") if envelope_from else None, recipients=recipients)


def _forwarded(content: Any) -> bytes | None:
    """The bytes of an attached message (an ``email`` one, or a Django-style one with ``message()``), else None."""
    if isinstance(content, Message):
        return content.as_bytes()
    if callable(getattr(content, "message", None)):
        return content.message().as_bytes()
    return None


def _part_attachment(part: Message) -> dict[str, Any]:
    if part.is_multipart() and part.get_content_maintype() != "message":
        raise InvalidMessageError("an attached MIME part holds parts of its own; attach files (or a message) "
                                  "instead", field="attachments")
    if part.get_content_maintype() == "message":
        inner = part.get_payload()
        content = inner[0].as_bytes() if isinstance(inner, list) and inner else b""
    else:
        content = part.get_payload(decode=True) or b""
    content_id = str(part.get("Content-ID", "")).strip().strip("<>") or None
    charset = part.get_content_charset()  # a MIMEText's: its bytes are in it, and say so again when sent
    content_type = with_charset(part.get_content_type(), charset) if charset else part.get_content_type()
    return {"filename": part.get_filename(), "content": content, "content_type": content_type,
            "content_id": content_id, "disposition": part.get_content_disposition()}


def email_attachment(attachment: Any, charset: str, field: str = "attachments") -> dict[str, Any]:
    """One of an ``EmailMessage``'s attachments, a MIME part or ``(filename, content, mimetype)``, as a request's."""
    if isinstance(attachment, Message):
        return _part_attachment(attachment)
    filename, content, mimetype = attachment
    mimetype = mimetype or (mimetypes.guess_type(filename)[0] if filename else None)
    forwarded = _forwarded(content)
    if forwarded is not None:
        return {"filename": filename, "content": forwarded, "content_type": mimetype}
    data, mimetype = attachment_content(content, mimetype, charset, field)
    return {"filename": filename, "content": data, "content_type": mimetype}


def attachment_content(data: Any, content_type: str | None, charset: str, field: str) -> tuple[bytes, str | None]:
    """An attachment's data as bytes, and its type: text is encoded in the charset its type names, else in the
    message's, and a text type then says which (without it, RFC 2046 has the text read as US-ASCII)."""
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data), content_type
    if not isinstance(data, str):
        raise InvalidMessageError(f"{field} must be bytes or text, not {type(data).__name__}; read the file first "
                                  "(f.read())", field=field)
    charset = (charset_of(content_type) if content_type else None) or charset
    try:
        encoded = data.encode(charset)
    except LookupError:
        raise InvalidMessageError(f"{field}: the charset {charset!r} is not one Python knows; name another (utf-8)",
                                  field=field) from None
    except UnicodeEncodeError as exc:
        raise InvalidMessageError(f"{field}: its text cannot be written in {charset} ({exc.reason} at character "
                                  f"{exc.start}); give bytes, or a charset that holds it (utf-8)",
                                  field=field) from None
    return encoded, with_charset(content_type, charset) if content_type else content_type


def _bodies(message: Any, payload: dict[str, Any], charset: str) -> None:
    subtype = str(getattr(message, "content_subtype", "plain") or "plain").lower()
    bodies = [(message.body or "", f"text/{subtype}")]
    bodies += [tuple(alternative)[:2] for alternative in getattr(message, "alternatives", None) or []]
    for index, (content, mimetype) in enumerate((c, str(m)) for c, m in bodies):  # a parameter's case kept
        text = str(body_text(content, charset, f"alternatives[{index - 1}]" if index else "body"))
        field = {"text/plain": "text", "text/html": "html"}.get(mimetype.lower())
        if not mimetype.lower().startswith("text/"):
            raise InvalidMessageError(f"an alternative body must be text (it is {mimetype}); attach it instead",
                                      field="alternatives")
        # The field's first text, or the same text again (attach_alternative(text, "text/plain")), written once.
        if field is None or payload.setdefault(field, text) != text:
            payload.setdefault("alternatives", []).append({"content": text, "content_type": mimetype})


def _check_shape(message: Any) -> None:
    for name, allowed in (("mixed_subtype", ("mixed", "related")), ("alternative_subtype", ("alternative",))):
        value = getattr(message, name, allowed[0])
        if value not in allowed:
            raise InvalidMessageError(f"{name} {value!r} is not a structure the gateway writes; use "
                                      f"{' or '.join(map(repr, allowed))}", field=name)


def draft_from_email(message: Any, *, charset: str = "utf-8") -> Draft:
    """A Django-style ``EmailMessage`` (flask-mailman's) as a draft; ``InvalidMessageError`` when it cannot be sent.
    The message's own ``encoding`` wins over ``charset``; the caller's object is not changed."""
    if not message.from_email:
        raise InvalidMessageError("the message has no sender; set MAIL_DEFAULT_SENDER (or the extension's "
                                  "default_sender) or the message's from_email", field="from")
    if not message.recipients():
        raise InvalidMessageError("the message has no recipients", field="to")
    _check_shape(message)
    charset = checked_charset(getattr(message, "encoding", None) or charset, "encoding")
    payload: dict[str, Any] = {"subject": checked_text(message.subject, "subject", "the subject"),
                               "from": checked_text(message.from_email, "from", "the sender")}
    for field in ("to", "cc", "bcc", "reply_to"):
        payload[field] = [checked_text(a, field, f"an address in {field}") for a in getattr(message, field) or []]
    _bodies(message, payload, charset)
    payload["attachments"] = [email_attachment(a, charset, f"attachments[{n}]")
                              for n, a in enumerate(message.attachments)]
    return library_draft(payload, dict(message.extra_headers or {}), charset=charset)


def render_email(message: Any, *, charset: str = "utf-8") -> RenderedMessage:
    """A Django-style ``EmailMessage`` composed as the HTTP API composes a request, with a fresh Message-ID and
    Date unless the message sets its own."""
    return draft_from_email(message, charset=charset).compose()
