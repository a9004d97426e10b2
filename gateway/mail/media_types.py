"""An attachment's Content-Type: ``type/subtype``, with RFC 2045 parameters where the caller gives them
(``text/csv; charset=utf-8``, as Flask-Mail's ``attach()`` writes), checked and written back in one form.

The value is parsed by the standard library's header parser (``email.policy.default``), which knows quoting and
RFC 2231; anything it reports as a defect is refused rather than guessed at, and every value is written back quoted
where it is not a token, so nothing a caller gives can end the header or add another.
"""

from __future__ import annotations

import re
from email.policy import default
from email.utils import quote

from mail_gateway.mail.rfc5322 import check_header_text

_TOKEN = re.compile(r"[A-Za-z0-9!#$&^_.+-]+")  # RFC 2045 token characters that need no quoting anywhere
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")
FIX = "give type/subtype, with parameters after it if any (text/csv; charset=utf-8)"


def content_type(value: str) -> str:
    """``value`` in one form (the type lowercased, each parameter ``; name=value``), or ``ValueError`` saying why."""
    check_header_text(value)
    media, _, rest = value.partition(";")
    if not _MEDIA_TYPE.fullmatch(media.strip()):
        raise ValueError(f"{value[:80]!r} is not a media type: {FIX}")
    if not rest.strip():
        return media.strip().lower()
    if not value.isascii():
        raise ValueError(f"a parameter holds a character that is not ASCII; {FIX}")
    parsed = default.header_factory("content-type", value)
    if parsed.defects:
        raise ValueError(f"its parameters cannot be read ({parsed.defects[0]}); {FIX}")
    return _written_back(parsed)


def _written_back(parsed: object, leaving_out: str = "") -> str:
    params = [f"{name.lower()}={_written(str(given))}" for name, given in parsed.params.items()  # type: ignore[attr-defined]
              if name.lower() != leaving_out]
    return "; ".join([parsed.content_type, *params])  # type: ignore[attr-defined]


def without_charset(value: str) -> str:
    """A value ``content_type`` wrote, without its charset: for text whose charset the composer names itself."""
    if charset_of(value) is None:
        return value
    return _written_back(default.header_factory("content-type", value), leaving_out="charset")


def _written(value: str) -> str:
    if not value.isascii() or not value.isprintable():
        raise ValueError(f"a parameter's value holds a character that is not printable ASCII; {FIX}")
    return value if _TOKEN.fullmatch(value) else f'"{quote(value)}"'


def media_type(value: str) -> str:
    """``type/subtype`` of a value ``content_type`` wrote."""
    return value.partition(";")[0]


def parameter_of(value: str, name: str) -> str | None:
    """The parameter ``name`` of a Content-Type value, if it has one."""
    if ";" not in value:
        return None
    return str(default.header_factory("content-type", value).params.get(name) or "") or None


def charset_of(value: str) -> str | None:
    """The ``charset`` parameter of a Content-Type value, if it has one."""
    return parameter_of(value, "charset")


def with_charset(value: str, charset: str) -> str:
    """A text type declared in the charset its text was encoded with: without it, RFC 2046 reads US-ASCII."""
    if not media_type(value).startswith("text/") or charset_of(value) is not None:
        return value
    return f"{value}; charset={_written(charset)}"
