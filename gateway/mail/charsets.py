"""A library message's charset, and the bodies it gives as bytes in that charset.

Flask-Mail and Django let a message choose its charset (``charset``, ``encoding``) and take a body as bytes,
passed on as they are; the gateway composes text, so those bytes are read in the message's charset here, and the
charset itself is checked before the composer writes its name into a Content-Type header.
"""

from __future__ import annotations

from typing import Any

from mail_gateway.errors import HeaderInjectionError, InvalidMessageError
from mail_gateway.mail.rfc5322 import check_header_text
from mail_gateway.settings.flask_compat import is_mime_charset


def checked_charset(charset: Any, field: str) -> str:
    """A library message's charset, refused naming ``field`` unless it is a MIME charset name of a text codec:
    Python's codec lookup also takes names such as ``"utf\\r\\n8"`` (it reads any run of other characters as
    ``_``), and the name is written into the Content-Type header as given."""
    text = "" if charset is None else str(charset)
    try:
        check_header_text(text)
    except ValueError as exc:
        raise HeaderInjectionError(f"the {field} {exc}", field=field) from exc
    if not is_mime_charset(text):
        raise InvalidMessageError(f"{field} {charset!r} is not the name of a character set Python knows; use one "
                                  "such as 'utf-8' or 'iso-8859-1'", field=field)
    return text


def body_text(content: Any, charset: str, field: str) -> Any:
    """A body given as bytes, read in the message's ``charset`` (the one Flask-Mail and Django encode text in,
    and pass bytes on as they are); anything else unchanged, for the request's validation to judge."""
    if not isinstance(content, bytes | bytearray):
        return content
    try:
        return bytes(content).decode(charset)
    except UnicodeDecodeError as exc:
        raise InvalidMessageError(f"{field} is bytes that are not {charset} (byte {exc.start}); give text, or "
                                  "bytes in the message's charset", field=field) from None
