"""``MAIL_MEMORY_KEEPS_ANY_ADDRESS``: the memory backend keeps a flask-mailman message as flask-mailman's locmem did.

The gateway refuses a message without a sender, or with an address without a domain (``tester``,
``little bird``), since no SMTP server takes it; flask-mailman's locmem kept both, and an application's test
suite may rely on that. With the setting, a connection whose backend is the memory backend keeps such a
message, and only for those reasons; every other backend (SMTP above all) still refuses it. The gateway's
composer writes addresses only, so that message is written by flask-mailman itself, as locmem showed it.
"""

from __future__ import annotations

import re
from typing import Any

from mail_gateway.errors import HeaderInjectionError, InvalidMessageError
from mail_gateway.extension.message_objects import is_flask_mail_message
from mail_gateway.mail.rendering import RenderedMessage
from mail_gateway.sending import Sender

# What an address (or no sender) of a flask-mailman message is reported as; anything else is still refused.
_ADDRESS_FIELD = re.compile(r"(from|to|cc|bcc|reply_to)(\[\d+\])?")


def keeps_as_given(sender: Sender, message: Any, exc: InvalidMessageError) -> bool:
    """Whether ``sender`` keeps ``message``, refused only for ``exc``'s addresses, as flask-mailman's locmem did."""
    if not (sender.backend.name == "memory" and sender.settings.mail_memory_keeps_any_address):
        return False
    if is_flask_mail_message(message) or isinstance(exc, HeaderInjectionError) or not message.recipients():
        return False
    return all(_ADDRESS_FIELD.fullmatch(error.field) for error in exc.errors)


class AsGiven:
    """A draft of one flask-mailman message written by flask-mailman (``message.message()``)."""

    def __init__(self, message: Any) -> None:
        self.message = message

    def compose(self) -> RenderedMessage:
        message = self.message
        built = message.message()
        if not message.from_email and "From" not in (message.extra_headers or {}):
            del built["From"]  # flask-mailman writes the text "None" there
        data = built.as_bytes(linesep="\r\n")
        return RenderedMessage(message_id=str(built["Message-ID"] or ""), envelope_from=message.from_email or "",
                               recipients=tuple(message.recipients()), data=data)
