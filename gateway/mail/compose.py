"""Compose a ``MessageRequest`` into the bytes that go on the wire, once.

Written here rather than with ``email.mime`` (or flask-mailman on top of it) because the standard library
builds, re-parses and re-folds header and parameter objects for every part: for a one-recipient text message
that was two thirds of the gateway's time per request. The shapes a request can take are few —

    text | html | alternative[text, html]
    related[that, inline images...]            when an attachment has a content_id
    mixed[that, attachments...]                when other attachments remain

— so their bytes are written directly. Header values that are not short printable ASCII go through the
standard library's own folding and RFC 2047 encoding (``compat32``), and the tests parse every output back
with the standard library's parser.

Every line stays within RFC 5322's 998 octets and every header is ASCII (RFC 2047). Text that is not ASCII
stays 8bit UTF-8, readable wherever the message is kept or printed; the SMTP backend says ``BODY=8BITMIME``
for it, or re-encodes it as quoted-printable for an upstream without 8BITMIME (``mail_gateway.mail.sevenbit``).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Iterable
from email.header import Header
from email.policy import compat32
from email.utils import formataddr, quote
from urllib.parse import quote as percent_encode

from mail_gateway.mail.addresses import Address, address_domain
from mail_gateway.mail.rendering import RenderedMessage, message_date, new_message_id
from mail_gateway.mail.request import Attachment, MessageRequest
from mail_gateway.mail.rfc5322 import first_long_line

_FOLDING = compat32.clone(linesep="\r\n")
_SHORT_LINE = 78  # RFC 5322 2.1.1: lines SHOULD be at most 78 characters
_UNFOLDABLE = 900  # characters of one address that folding leaves on a line of its own, within 998 octets
_BASE64_LINE = 57  # input bytes per 76-character base64 line
_ADDRESS_HEADERS = ("From", "To", "Cc", "Reply-To")  # each address fits a line already (address_text)
_PARAMETER_SEGMENT = 60  # characters of an RFC 2231 parameter per continuation


def _encoded_words(value: str) -> str:
    # Encoded-words may be split anywhere, so a long word still folds; joined by spaces, folding breaks there.
    return Header(value, "utf-8").encode(linesep=" ")


def header(name: str, value: str) -> bytes:
    """One header line with its CRLF: verbatim when it is short printable ASCII, else folded and, where it
    is not ASCII, RFC 2047-encoded by the standard library. A word too long to fold within 998 octets is
    RFC 2047-encoded too, since encoded-words can be split anywhere."""
    if len(name) + len(value) + 2 <= _SHORT_LINE and value.isascii() and value.isprintable():
        return f"{name}: {value}\r\n".encode("ascii")
    folded = _FOLDING.fold_binary(name, value)
    if first_long_line(folded) is not None and name not in _ADDRESS_HEADERS:
        folded = _FOLDING.fold_binary(name, _encoded_words(value))
    return folded


def address_text(address: Address) -> str:
    """An address as a header shows it: the display name RFC 2047-encoded when not ASCII, and the domain in
    its ASCII form, since without SMTPUTF8 a header must be ASCII.

    A name is one encoded-word as long as that fits on a line: split into several, Python's own parser (the
    outbox's, and many test suites') would show a space between them. Only a name too long for one line
    is split.
    """
    if not address.display_name:
        return address.envelope
    text = formataddr((address.display_name, address.envelope), charset="utf-8")
    if len(text) <= _UNFOLDABLE:
        return text
    return f"{_encoded_words(address.display_name)} <{address.envelope}>"


def _address_header(name: str, addresses: Iterable[Address]) -> bytes:
    return header(name, ", ".join(address_text(a) for a in addresses))


def _crlf_lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def text_part(text: str, subtype: str) -> list[bytes]:
    """A text/plain or text/html part in UTF-8: 7bit or 8bit as it is, quoted-printable when a line would be
    longer than RFC 5322 allows or the text holds NUL (which neither 7bit nor 8bit may carry)."""
    data = _crlf_lines(text).encode("utf-8")
    if b"\0" in data or first_long_line(data) is not None:
        encoding = "quoted-printable"
        data = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    else:
        encoding = "7bit" if data.isascii() else "8bit"
    data = data.replace(b"\n", b"\r\n")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    head = (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: {encoding}\r\n\r\n").encode("ascii")
    return [head, data]


def _filename_parameter(filename: str) -> str:
    if filename.isascii():
        return f'filename="{quote(filename)}"'
    # RFC 2231, in continuations (filename*0*, filename*1*, ...) so a long name keeps lines short; a
    # segment never ends inside a %XX escape.
    encoded = percent_encode(filename, safe="")
    segments, start = [], 0
    while start < len(encoded):
        end = min(len(encoded), start + _PARAMETER_SEGMENT)
        percent = encoded.rfind("%", max(start, end - 2), end)
        if percent != -1 and end < len(encoded):
            end = percent
        segments.append(encoded[start:end])
        start = end
    if len(segments) == 1:
        return f"filename*=utf-8''{encoded}"
    return "; ".join(f"filename*{i}*={'utf-8' + chr(39) * 2 if i == 0 else ''}{segment}"
                     for i, segment in enumerate(segments))


def attachment_part(attachment: Attachment) -> list[bytes]:
    """A file, base64-encoded whatever its type, so the bytes that arrive are exactly the bytes sent."""
    disposition = "inline" if attachment.content_id else "attachment"
    head = [f"Content-Type: {attachment.mimetype}\r\n".encode("ascii"),
            b"Content-Transfer-Encoding: base64\r\n",
            header("Content-Disposition", f"{disposition}; {_filename_parameter(attachment.filename)}")]
    if attachment.content_id:
        head.append(header("Content-ID", f"<{attachment.content_id}>"))
    content = attachment.content
    # In slices of whole lines: encodebytes builds one small object per line before joining them.
    step = _BASE64_LINE * 16384
    body = [base64.encodebytes(content[start:start + step]).replace(b"\n", b"\r\n")
            for start in range(0, len(content), step)]
    return [*head, b"\r\n", *body]


def multipart(subtype: str, parts: list[list[bytes]]) -> list[bytes]:
    # Random, so no text a sender wrote in advance can contain it.
    boundary = f"==============={secrets.token_hex(16)}=="
    chunks = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode("ascii")]
    for part in parts:
        chunks.append(f"--{boundary}\r\n".encode("ascii"))
        chunks.extend(part)
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return chunks


def body_parts(request: MessageRequest) -> list[bytes]:
    """The MIME body (its Content-Type header first) of the request's shape."""
    if request.text is not None and request.html is not None:
        body = multipart("alternative", [text_part(request.text, "plain"), text_part(request.html, "html")])
    elif request.text is not None:
        body = text_part(request.text, "plain")
    else:
        body = text_part(request.html or "", "html")
    inline = [a for a in request.attachments if a.content_id]
    if inline:
        body = multipart("related", [body, *(attachment_part(a) for a in inline)])
    files = [a for a in request.attachments if not a.content_id]
    if files:
        body = multipart("mixed", [body, *(attachment_part(a) for a in files)])
    return body


def compose(request: MessageRequest) -> RenderedMessage:
    """The envelope and RFC 5322 bytes the request describes, with a fresh Message-ID and Date."""
    sender = request.from_
    if sender is None:  # parse_message_request fills in the default sender or refuses the request
        raise ValueError("a request without a sender cannot be composed")
    message_id = new_message_id(address_domain(sender.envelope))
    head = [_address_header("From", [sender]), _address_header("To", request.to) if request.to else b"",
            _address_header("Cc", request.cc) if request.cc else b"",
            _address_header("Reply-To", request.reply_to) if request.reply_to else b"",
            header("Subject", request.subject), header("Date", message_date()), header("Message-ID", message_id)]
    head += [header(name, value) for name, value in request.extra_headers().items()]
    head.append(b"MIME-Version: 1.0\r\n")
    data = b"".join([*head, *body_parts(request)])
    return RenderedMessage(message_id, sender.envelope, tuple(r.envelope for r in request.recipients), data)
