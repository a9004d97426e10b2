"""Request headers that must arrive once: Host, Authorization, Content-Type and Idempotency-Key.

WSGI gives an application one value per header, so a server joins a header sent twice into one: waitress as
``a, b``, Werkzeug's development server and test client as ``a,b`` or ``a, b``. Taken as it is, such a value is
another idempotency key, an API key that does not match, or a Host no one sent. None of these headers has a comma
in its grammar outside a quoted string (a Bearer token, a host name, a media type, a key: RFC 8941's sf-string
keeps its commas inside quotes), so a comma outside quotes means more than one value, and the request is refused.
"""

from __future__ import annotations

import re

from flask import request

from mail_gateway.errors import FieldError
from mail_gateway.http.problems import Problem

# Commas only inside complete quoted strings (RFC 9110 quoted-string, RFC 8941 sf-string: ``\`` escapes).
_ONE_VALUE = re.compile(r'(?:"(?:[^"\\]|\\.)*"|[^",])*')
_UNPREFIXED = ("Content-Type", "Content-Length")  # the two headers WSGI names without HTTP_


def environ_key(name: str) -> str:
    key = name.upper().replace("-", "_")
    return key if name in _UNPREFIXED else f"HTTP_{key}"


def sent_more_than_once(name: str) -> Problem:
    said = f"arrived as more than one value (sent more than once, or as a list); send {name} once, with one value"
    return Problem(400, f"{name} sent more than once", f"The request's {name} {said}.", "duplicate-header",
                   [FieldError(name, said)])


def one_value(name: str) -> str | None:
    """The value of the request's header ``name``, or None without it; a 400 naming it when it holds more than
    one value."""
    value: str | None = request.environ.get(environ_key(name))
    if value is not None and "," in value and not _ONE_VALUE.fullmatch(value):
        raise sent_more_than_once(name)
    return value
