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
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Iterable
from email.policy import compat32
from email.utils import formataddr, quote
from urllib.parse import quote as percent_encode

from mail_gateway.mail.addresses import Address, address_domain
from mail_gateway.mail.rendering import RenderedMessage, message_date, new_message_id
from mail_gateway.mail.request import Attachment, MessageRequest

_FOLDING = compat32.clone(linesep="\r\n")
_SHORT_LINE = 78  # RFC 5322 2.1.1: lines SHOULD be at most 78 characters
_LONG_LINE = 998  # ... and MUST be at most 998 octets
_BASE64_LINE = 57  # input bytes per 76-character base64 line


def header(name: str, value: str) -> bytes:
    """One header line with its CRLF: verbatim when it is short printable ASCII, else folded and, where it
    is not ASCII, RFC 2047-encoded by the standard library."""
    if len(name) + len(value) + 2 <= _SHORT_LINE and value.isascii() and value.isprintable():
        return f"{name}: {value}\r\n".encode("ascii")
    return _FOLDING.fold_binary(name, value)


def address_text(address: Address) -> str:
    """An address as a header shows it: the display name RFC 2047-encoded when not ASCII, and the domain in
    its ASCII form, since without SMTPUTF8 a header must be ASCII."""
    if not address.display_name:
        return address.envelope
    return formataddr((address.display_name, address.envelope), charset="utf-8")


def _address_header(name: str, addresses: Iterable[Address]) -> bytes:
    return header(name, ", ".join(address_text(a) for a in addresses))


def _crlf_lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def text_part(text: str, subtype: str) -> list[bytes]:
    """A text/plain or text/html part in UTF-8: 7bit or 8bit as it is, quoted-printable when a line would be
    longer than SMTP allows."""
    lines = _crlf_lines(text)
    data = lines.encode("utf-8")
    if any(len(line) > _LONG_LINE for line in data.split(b"\n")):
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
    return f"filename*=utf-8''{percent_encode(filename, safe='')}"  # RFC 2231


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
