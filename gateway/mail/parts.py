"""The MIME parts of a composed message, written as bytes: header lines, text parts, attachments, multiparts.

See ``mail_gateway.mail.compose`` for why they are written directly rather than with ``email.mime``. Header values
that are not short printable ASCII go through the standard library's own folding and RFC 2047 encoding
(``compat32``); every line stays within RFC 5322's 998 octets.
"""

from __future__ import annotations

import base64
import codecs
import secrets
from email.header import Header
from email.policy import compat32
from email.utils import quote
from urllib.parse import quote as percent_encode

from mail_gateway.errors import InvalidMessageError
from mail_gateway.mail import quoted_printable
from mail_gateway.mail.media_types import media_type, parameter_of, with_charset
from mail_gateway.mail.request import Attachment
from mail_gateway.mail.rfc5322 import first_long_line, long_line_message

# RFC 2047 2: an encoded-word is at most 75 characters. The standard library folds to the line's length, a
# continuation's leading space included: at its default of 78 its words were 76 long, at 76 they are at most 75.
_ENCODED_LINE = 76
_FOLDING = compat32.clone(linesep="\r\n", max_line_length=_ENCODED_LINE)
_SHORT_LINE = 78  # RFC 5322 2.1.1: lines SHOULD be at most 78 characters
_BASE64_LINE = 57  # input bytes per 76-character base64 line
ADDRESS_HEADERS = ("From", "To", "Cc", "Reply-To")  # each address fits a line already (compose.address_text)
_PARAMETER_SEGMENT = 60  # characters of an RFC 2231 parameter per continuation
_DECODED_SLICE = 1 << 20


def encoded_words(value: str, linesep: str = " ") -> str:
    """``value`` as encoded-words of at most 75 characters, joined by ``linesep``: spaces where the header is folded
    afterwards (folding breaks there), CRLF where it is not."""
    # Its first word has no space before it, so the words' length is the line's: 75.
    return Header(value, "utf-8", maxlinelen=_ENCODED_LINE - 1).encode(linesep=linesep)


def header(name: str, value: str) -> bytes:
    """One header line with its CRLF: verbatim when it is short printable ASCII, else folded and, where it
    is not ASCII, RFC 2047-encoded by the standard library. A word too long to fold within 998 octets is
    RFC 2047-encoded too, since encoded-words can be split anywhere."""
    if len(name) + len(value) + 2 <= _SHORT_LINE and value.isascii() and value.isprintable():
        return f"{name}: {value}\r\n".encode("ascii")
    folded = _FOLDING.fold_binary(name, value)
    if first_long_line(folded) is not None and name not in ADDRESS_HEADERS:
        # Folded knowing the name's length, the first word follows it: compat32 folding a run of encoded-words
        # began with an empty line, and the value then read back with a space in front.
        words = Header(value, "utf-8", _ENCODED_LINE, name).encode(linesep="\r\n")
        folded = f"{name}: {words}\r\n".encode("ascii")
    return folded


def _crlf_lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def text_part(text: str, content_type: str, charset: str = "utf-8") -> list[bytes]:
    """A text part of ``content_type`` (``text/plain``, or another with its parameters but no charset) in
    ``charset`` (UTF-8 unless a library caller chose another): 7bit or 8bit as it is,
    quoted-printable when a line would be longer than RFC 5322 allows or the text holds NUL (which neither 7bit
    nor 8bit may carry), base64 in a charset that writes a line break as other octets than LF (UTF-16, UTF-32),
    which nothing else carries whole. ``UnicodeEncodeError`` when the charset cannot hold the text."""
    if charset.lower() not in ("utf-8", "utf8") and "\n".encode(charset) != b"\n":
        encoding = "base64"  # as Flask-Mail and flask-mailman send it: QP would make each break's 0x0A a CR LF
        data = base64.encodebytes(_crlf_lines(text).replace("\n", "\r\n").encode(charset)).replace(b"\n", b"\r\n")
    else:
        data = _crlf_lines(text).encode(charset)
        if b"\0" in data or first_long_line(data) is not None:
            encoding = "quoted-printable"
            data = quoted_printable.encode(data)
        else:
            encoding = "7bit" if data.isascii() else "8bit"
        # Ended as the text ends: the line break before a multipart's next boundary belongs to that boundary
        # (RFC 2046 5.1.1), so a text arrives exactly as it was written, with or without a final newline.
        data = data.replace(b"\n", b"\r\n")
    head = header("Content-Type", f'{content_type}; charset="{charset}"')
    return [head, f"Content-Transfer-Encoding: {encoding}\r\n\r\n".encode("ascii"), data]


def _parameter(name: str, value: str) -> str:
    """``name=value`` for a header's parameters: quoted when ASCII, else RFC 2231, never an encoded-word (RFC 2047 5
    allows none in a quoted string)."""
    if value.isascii():
        return f'{name}="{quote(value)}"'
    # RFC 2231, in continuations (name*0*, name*1*, ...) so a long value keeps lines short. A segment ends between
    # characters, never inside one's UTF-8 octets: Python's parser, as many clients, decodes each alone.
    segments, segment = [], ""
    for character in value:
        encoded = percent_encode(character, safe="")
        if segment and len(segment) + len(encoded) > _PARAMETER_SEGMENT:
            segments.append(segment)
            segment = ""
        segment += encoded
    segments.append(segment)
    if len(segments) == 1:
        return f"{name}*=utf-8''{segment}"
    return "; ".join(f"{name}*{i}*={'utf-8' + chr(39) * 2 if i == 0 else ''}{segment}"
                     for i, segment in enumerate(segments))


def _is_utf8(data: bytes) -> bool:
    # In slices: decoding a large file whole would hold its text beside its bytes and its base64.
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for start in range(0, len(data), _DECODED_SLICE):
            decoder.decode(data[start:start + _DECODED_SLICE])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _content_type(attachment: Attachment) -> bytes:
    value = attachment.mimetype
    if media_type(value).startswith("text/") and not attachment.content.isascii() and _is_utf8(attachment.content):
        # RFC 2046 4.1.2 reads text without a charset as US-ASCII; with_charset leaves other types and a given one.
        value = with_charset(value, "utf-8")
    if attachment.filename is not None and parameter_of(value, "name") is None:
        # RFC 2183's filename is the standard, but some clients read only Content-Type's older name (Outlook for
        # inline images among them): Thunderbird and Apple Mail write both, and so does the gateway.
        value = f"{value}; {_parameter('name', attachment.filename)}"
    return header("Content-Type", value)


def _disposition(attachment: Attachment) -> bytes:
    kind = "inline" if attachment.inline else "attachment"
    if attachment.filename is None:
        return header("Content-Disposition", kind)
    return header("Content-Disposition", f"{kind}; {_parameter('filename', attachment.filename)}")


def _message_part(content: bytes) -> list[bytes]:
    # RFC 2046 5.2.1: a message/rfc822 body may only be 7bit, 8bit or binary, so a forwarded message goes as it is.
    data = content.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    long_line = first_long_line(data)
    if long_line is not None:
        raise InvalidMessageError(f"an attached message cannot be sent: {long_line_message(long_line)}",
                                  field="attachments")
    return [f"Content-Transfer-Encoding: {'7bit' if data.isascii() else '8bit'}\r\n\r\n".encode("ascii"), data]


def attachment_part(attachment: Attachment) -> list[bytes]:
    """A file, base64-encoded whatever its type, so the bytes that arrive are exactly the bytes sent; a
    message/rfc822 attachment as it is, which is all RFC 2046 allows."""
    head = [_content_type(attachment), _disposition(attachment)]
    if attachment.content_id:
        head.append(header("Content-ID", f"<{attachment.content_id}>"))
    content = attachment.content
    if media_type(attachment.mimetype) == "message/rfc822":
        return [*head, *_message_part(content)]
    head.insert(1, b"Content-Transfer-Encoding: base64\r\n")
    # In slices of whole lines: encodebytes builds one small object per line before joining them.
    step = _BASE64_LINE * 16384
    body = [base64.encodebytes(content[start:start + step]).replace(b"\n", b"\r\n")
            for start in range(0, len(content), step)]
    return [*head, b"\r\n", *body]


def multipart(subtype: str, parts: list[list[bytes]], parameters: str = "") -> list[bytes]:
    """``parameters``: any the subtype needs besides its boundary (``type="..."`` for multipart/related)."""
    # Random, so no text a sender wrote in advance can contain it.
    boundary = f"==============={secrets.token_hex(16)}=="
    given = f"{parameters};\r\n " if parameters else ""
    chunks = [f'Content-Type: multipart/{subtype}; {given}boundary="{boundary}"\r\n\r\n--{boundary}\r\n'
              .encode("ascii")]
    between = f"\r\n--{boundary}\r\n".encode("ascii")  # each boundary's line break is its own (RFC 2046 5.1.1)
    for index, part in enumerate(parts):
        if index:
            chunks.append(between)
        chunks.extend(part)
    chunks.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
    return chunks
