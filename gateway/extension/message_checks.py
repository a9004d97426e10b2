"""The header checks a Flask-Mail ``Message`` (this package's or Flask-Mail's own) meets before it is read.

Flask-Mail refused a line break in the subject (other than folding), the sender, a recipient or Reply-To with
``BadHeaderError``. The gateway holds those to what every header is held to (``mail_gateway.mail.rfc5322``): a
vertical tab, NUL, NEL or U+2028 ends a header line for many parsers as CR and LF do, so each is the same
header injection, raised as the same error. Flask-Mail's own ``Message`` answers ``has_bad_headers()`` with
its narrower check, so the send path asks ``check_headers`` rather than the object. ``msgId``, which Flask-Mail
wrote unchecked, is checked as a ``Message-ID`` in ``extra_headers`` is.
"""

from __future__ import annotations

from typing import Any

from mail_gateway.errors import HeaderInjectionError, InvalidMessageError
from mail_gateway.mail.objects import checked_text
from mail_gateway.mail.rendering import checked_message_id as message_id_checked
from mail_gateway.settings.core import name_and_address


class PairText(str):
    """A ``(name, address)`` sender as Flask-Mail's ``Message.sender`` reads it back, ``'J. Doe <jd@example.com>'``,
    still holding the pair: that text leaves the name unquoted, which reads as another address (or none) when the
    name has a comma or a period, so what is written is the pair, quoted where RFC 5322 needs it."""

    pair: tuple[str, str]


def _is_pair(value: Any) -> bool:
    return isinstance(value, tuple | list) and len(value) == 2 and all(isinstance(part, str) for part in value)


def address_text(address: str | tuple[str, str], field: str = "sender") -> str:
    """A Flask-Mail address, a string or a ``(name, address)`` pair, as one string to write."""
    if isinstance(address, PairText):
        return name_and_address(*address.pair)
    if isinstance(address, tuple | list):
        if not _is_pair(address):
            raise InvalidMessageError(f"an address in {field} is {address!r}; give an address as a string or a "
                                      "(name, address) pair of strings", field=field)
        return name_and_address(*address)
    return address


def sender_text(sender: str | tuple[str, str]) -> str:
    """Flask-Mail's ``Message.sender``: a pair as ``f"{name} <{address}>"`` (a ``PairText``), a string as given."""
    if isinstance(sender, tuple | list) and not isinstance(sender, PairText):
        address_text(sender)  # refuses what is no pair, naming the sender
        text = PairText(f"{sender[0]} <{sender[1]}>")
        text.pair = (sender[0], sender[1])
        return text
    return sender


def configured_sender(given: Any, effective: str | None) -> Any:
    """``MAIL_DEFAULT_SENDER`` read back as Flask-Mail and flask-mailman read it, a pair as the pair, when the
    settings' text (``effective``, which the environment may override) is that pair's."""
    if isinstance(given, tuple) and _is_pair(given) and name_and_address(*given) == effective:
        return given
    return effective


def given_sender(message: Any, default_sender: Any) -> Any:
    """The sender to write for ``message``: its own, else ``default_sender``. Flask-Mail's own ``Message`` turned a
    default pair into unquoted text (``J. Doe <jd@example.com>``), which is written as that pair."""
    sender = message.sender
    if isinstance(default_sender, tuple) and _is_pair(default_sender) and type(sender) is str \
            and sender == f"{default_sender[0]} <{default_sender[1]}>":
        return default_sender
    return sender or default_sender


def message_text(value: Any) -> Any:
    """A subject or body as Flask-Mail reads it: text and bytes as they are (bytes are read in the message's
    charset later), None for none, anything else what ``str()`` gives, such as Flask-Babel's ``lazy_gettext()``."""
    return value if value is None or isinstance(value, str | bytes | bytearray) else str(value)


def address_list(addresses: Any, field: str) -> list[Any]:
    """``recipients``, ``cc`` or ``bcc`` as a list. A string is refused rather than taken as one address:
    Flask-Mail took it as a list of one-character addresses, so code that gives one has never sent."""
    if isinstance(addresses, str):
        raise InvalidMessageError(f"{field} must be a list of addresses; got a string: give [{addresses!r}]",
                                  field=field)
    return list(addresses or [])


def _is_folded(lines: list[str]) -> bool:
    """Whether a subject's CRLF-separated lines are RFC 5322 folding: each line after a CRLF starts with a space
    or a tab, and none is blank."""
    return len(lines) == 1 or all(line.strip() and (number == 0 or line[0] in " \t")
                                  for number, line in enumerate(lines))


def _addresses(message: Any, sender: str | None) -> list[tuple[str, Any]]:
    reply_to = [message.reply_to] if message.reply_to else []
    named = [("sender", [sender] if sender else []), ("recipients", message.recipients), ("cc", message.cc),
             ("bcc", message.bcc), ("reply_to", reply_to)]
    return [(field, address) for field, addresses in named for address in addresses or []]


def check_headers(message: Any, sender: str | None) -> None:
    """``HeaderInjectionError`` naming the attribute when the subject has a line break other than folding, or
    the subject or an address holds a control character or line separator."""
    lines = (message_text(message.subject) or "").split("\r\n")
    if not _is_folded(lines):
        raise HeaderInjectionError("the subject has a line break that is not folding (CRLF, then a space or tab, "
                                   "then text); remove it", field="subject")
    checked_text("".join(lines), "subject", "the subject")
    for field, address in _addresses(message, sender):
        checked_text(address_text(address, field), field, f"an address in {field}")


def has_bad_headers(message: Any) -> bool:
    """Flask-Mail's ``has_bad_headers()``, answering as the send path checks (``check_headers``)."""
    try:
        check_headers(message, message.sender)
    except HeaderInjectionError:
        return True
    return False


def checked_message_id(msg_id: Any) -> str:
    """``msgId`` checked as a ``Message-ID`` among ``extra_headers`` is (``HeaderInjectionError``), and as one
    ``<...>`` token: it is written as given, and anything else is a Message-ID no reader can use."""
    return message_id_checked(checked_text(msg_id, "msgId", "msgId"), "msgId")
