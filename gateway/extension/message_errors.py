"""What the library API raises for a message Flask-Mail or flask-mailman would have refused, as their classes.

Code written for them catches ``BadHeaderError`` (a line break in a header) or ``AssertionError`` (Flask-Mail
asserted a sender and recipients). Each class here is also the gateway's ``InvalidMessageError``, naming the
field, so the gateway's own handling and the old ``except`` both catch it. ``mail_gateway.errors`` stays plain:
only the library API (``mail_gateway.extension.message_objects``, ``connection``) raises these.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from flask_mailman.message import BadHeaderError as MailmanBadHeaderError

from mail_gateway.errors import InvalidMessageError


class BadHeaderError(InvalidMessageError, MailmanBadHeaderError):
    """A line break or other control character in a header or address: flask-mailman's ``BadHeaderError``."""


class IncompleteMessageError(InvalidMessageError, AssertionError):
    """A Flask-Mail style message without a sender or recipients, which Flask-Mail ``assert``-ed."""


_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    """``FlaskMailBadHeaderError``: ``BadHeaderError`` that is Flask-Mail's too. Built once Flask-Mail is loaded
    and on first use, since importing Flask-Mail changes the email package's charsets process-wide."""
    if name != "FlaskMailBadHeaderError" or "flask_mail" not in sys.modules:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _lock:
        if name not in globals():
            bases = (BadHeaderError, sys.modules["flask_mail"].BadHeaderError)
            globals()[name] = type(name, bases, {"__module__": __name__})
        return globals()[name]


def bad_header_error(message: str, field: str) -> InvalidMessageError:
    """flask-mailman's BadHeaderError, and Flask-Mail's too once Flask-Mail is loaded."""
    cls = __getattr__("FlaskMailBadHeaderError") if "flask_mail" in sys.modules else BadHeaderError
    return cls(message, field=field)
