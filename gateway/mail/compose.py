"""Compose a ``MessageRequest`` into the bytes that go on the wire, once: the gateway's one renderer.

Every message the gateway builds is built here — a JSON body of the HTTP API, ``mail-gateway send``, and a
library message object read into the same request (``mail_gateway.mail.objects``) — so the same message gives
the same bytes whichever way it came, and its Message-ID and Date are made in one place (``rendering.stamp``).

Written here rather than with ``email.mime`` (or flask-mailman on top of it) because the standard library
builds, re-parses and re-folds header and parameter objects for every part: for a one-recipient text message
that was two thirds of the gateway's time per request. The shapes a request can take are few —

    text | html | alternative[text, html, other text/ renderings]
    related[that, inline images...]            when an attachment has a content_id
    mixed[that, attachments...]                when other attachments remain

— so their bytes are written directly. Header values that are not short printable ASCII go through the
standard library's own folding and RFC 2047 encoding (``compat32``), and the tests parse every output back
with the standard library's parser.

Every line stays within RFC 5322's 998 octets and every header is ASCII (RFC 2047), except an address whose
local part is not (RFC 6531), written as UTF-8 (RFC 6532) for an upstream with SMTPUTF8. Text that is not ASCII
stays 8bit UTF-8, readable wherever the message is kept or printed; the SMTP backend says ``BODY=8BITMIME``
for it, or re-encodes it as quoted-printable for an upstream without 8BITMIME (``mail_gateway.mail.sevenbit``).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import formataddr

from mail_gateway.errors import InvalidMessageError
from mail_gateway.mail.addresses import Address
from mail_gateway.mail.media_types import media_type
from mail_gateway.mail.nesting import TOO_DEEP, too_deep
from mail_gateway.mail.parts import attachment_part, encoded_words, header, multipart, text_part
from mail_gateway.mail.rendering import RenderedMessage, stamp
from mail_gateway.mail.request import MessageRequest

CRLF = "\r\n"
_UNFOLDABLE = 900  # characters of one address that folding leaves on a line of its own, within 998 octets


def address_text(address: Address) -> str:
    """An address as a header shows it: the display name RFC 2047-encoded when not ASCII, and the domain in
    its ASCII form, since without SMTPUTF8 a header must be ASCII; an address whose local part is not ASCII, which
    needs SMTPUTF8 anyway, as written.

    A name is one encoded-word as long as that fits on a line: split into several, Python's own parser (the
    outbox's, and many test suites') would show a space between them. Only a name too long for one line
    is split.
    """
    if not address.envelope.isascii():  # formataddr would refuse it; the name is encoded all the same
        # The field is UTF-8 (RFC 6532), so its domain is shown as written, in U-labels; it is written unfolded,
        # so a long name's words go on lines of their own.
        if not address.display_name:
            return address.addr_spec
        return f"{encoded_words(address.display_name, CRLF)} <{address.addr_spec}>"
    if not address.display_name:
        return address.envelope
    text = formataddr((address.display_name, address.envelope), charset="utf-8")
    if len(text) <= _UNFOLDABLE:
        return text
    return f"{encoded_words(address.display_name)} <{address.envelope}>"


def _address_header(name: str, addresses: Iterable[Address]) -> bytes:
    texts = [address_text(a) for a in addresses]
    if all(text.isascii() for text in texts):
        return header(name, ", ".join(texts))
    # A non-ASCII local part (RFC 6531) has no RFC 2047 form: the field is UTF-8 (RFC 6532), one address a line.
    return f"{name}: {f',{CRLF} '.join(texts)}{CRLF}".encode()


def _bodies(request: MessageRequest, charset: str) -> tuple[str, list[bytes]]:
    """The text bodies, and their media type."""
    bodies = [("text/plain", request.text), ("text/html", request.html),
              *((a.content_type, a.content) for a in request.alternatives)]
    bodies = [(kind, text) for kind, text in bodies if text is not None]
    if not bodies:  # parse_message_request refuses such a request; an empty text part keeps compose total
        bodies = [("text/plain", "")]
    parts = [text_part(text, kind, charset) for kind, text in bodies]
    if len(parts) == 1:
        return media_type(bodies[0][0]), parts[0]
    return "multipart/alternative", multipart("alternative", parts)


def body_parts(request: MessageRequest, charset: str = "utf-8") -> list[bytes]:
    """The MIME body (its Content-Type header first) of the request's shape."""
    root, body = _bodies(request, charset)
    inline = [a for a in request.attachments if a.inline and a.content_id]
    if inline:  # RFC 2387 3.1: multipart/related MUST name its root's type
        body = multipart("related", [body, *(attachment_part(a) for a in inline)], f'type="{root}"')
    files = [a for a in request.attachments if not (a.inline and a.content_id)]
    if files:
        body = multipart("mixed", [body, *(attachment_part(a) for a in files)])
    return body


def _encodable(request: MessageRequest, charset: str) -> None:
    bodies = [("text", request.text), ("html", request.html),
              *((f"alternatives[{i}].content", a.content) for i, a in enumerate(request.alternatives))]
    for field, text in bodies:
        try:
            (text or "").encode(charset)
        except UnicodeEncodeError as exc:
            raise InvalidMessageError(f"the {charset} charset cannot hold character U+{ord(text[exc.start]):04X} "
                                      "(a library message's charset); send it in utf-8", field=field) from exc


LARGE_MESSAGE = 1 << 20


def joined(chunks: list[bytes]) -> bytes:
    """``b"".join(chunks)``, emptying ``chunks`` as it goes: a large attachment's base64 is then held once, not
    twice (its lines, and the message made of them) at the request's peak. ``BytesIO.getvalue()`` hands over its
    buffer without a copy."""
    if sum(map(len, chunks)) < LARGE_MESSAGE:  # the plain join is quicker, and the copy small
        return b"".join(chunks)
    buffer = io.BytesIO()
    chunks.reverse()
    while chunks:
        buffer.write(chunks.pop())
    return buffer.getvalue()


def compose(request: MessageRequest, *, charset: str = "utf-8", message_id: str | None = None,
            date: str | None = None, envelope_from: str | None = None,
            recipients: tuple[str, ...] | None = None) -> RenderedMessage:
    """The envelope and RFC 5322 bytes the request describes.

    Every message the gateway builds is built here, whichever way it came in (the HTTP API, the CLI, a library
    message object, ``mail_gateway.mail.objects``), so the same message gives the same bytes. A Message-ID and a
    Date are made here (``stamp``) unless a library caller set its own; ``envelope_from`` and ``recipients``
    are for a library message whose envelope differs from its header fields (Flask-Mail's ``envelope_from``,
    a ``From`` or ``To`` field among flask-mailman's ``extra_headers``).
    """
    sender = request.from_
    if sender is None:  # parse_message_request fills in the default sender or refuses the request
        raise ValueError("a request without a sender cannot be composed")
    if charset.lower() not in ("utf-8", "utf8"):
        _encodable(request, charset)
    mail_from = envelope_from if envelope_from is not None else sender.envelope
    message_id, date = stamp(mail_from, message_id, date)
    head = [_address_header("From", [sender]), _address_header("To", request.to) if request.to else b"",
            _address_header("Cc", request.cc) if request.cc else b"",
            _address_header("Reply-To", request.reply_to) if request.reply_to else b"",
            header("Subject", request.subject), header("Date", date), header("Message-ID", message_id)]
    head += [header(name, value) for name, value in request.extra_headers().items()]
    head.append(b"MIME-Version: 1.0\r\n")
    data = joined([*head, *body_parts(request, charset)])
    # An attached message is bytes the caller built, nested as deeply as it likes; the rest is the few levels above.
    if any(media_type(a.mimetype) == "message/rfc822" for a in request.attachments) and too_deep(data):
        raise InvalidMessageError(f"an attached message cannot be sent: {TOO_DEEP}", field="attachments")
    envelope = recipients if recipients is not None else tuple(r.envelope for r in request.recipients)
    return RenderedMessage(message_id, mail_from, envelope, data)


@dataclass(frozen=True, slots=True)
class Draft:
    """A validated request and what only a library message object sets beside it (``mail_gateway.mail.objects``):
    its charset, its own Message-ID or Date, an envelope that differs from its header fields."""

    request: MessageRequest
    charset: str = "utf-8"
    message_id: str | None = None
    date: str | None = None
    envelope_from: str | None = None
    recipients: tuple[str, ...] | None = None

    def compose(self) -> RenderedMessage:
        return compose(self.request, charset=self.charset, message_id=self.message_id, date=self.date,
                       envelope_from=self.envelope_from, recipients=self.recipients)
