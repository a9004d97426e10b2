"""Which field of a request each envelope recipient came from, so that a refusal of every recipient names the
fields to fix (``to[0]``, ``cc[1]``, ``rcpt_to[0]``) as every other refusal of a request does.

A backend and the suppression list speak of envelope addresses only; the way in that has the request (the HTTP
API's message, batch item and raw message) names them once the outcome is known, and only for a refusal, so a
message sent costs nothing here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from mail_gateway.errors import FieldError, RecipientsRefusedError
from mail_gateway.mail.addresses import Address
from mail_gateway.mail.request import MessageRequest
from mail_gateway.mail.result import RecipientResult

Outcome = TypeVar("Outcome")
SUPPRESSED = ("{email} is on the suppression list, so it was not sent to; remove it from the message, or from the "
              "list (DELETE /v1/suppressions/{email}) if it was listed in error")


def message_lists(request: MessageRequest) -> tuple[tuple[str, Sequence[Address]], ...]:
    return ("to", request.to), ("cc", request.cc), ("bcc", request.bcc)


def _fields(lists: Iterable[tuple[str, Sequence[Address]]]) -> dict[str, str]:
    """Each envelope address, to the first field that lists it (``to[0]`` before a ``bcc[2]`` of the same one)."""
    fields: dict[str, str] = {}
    for name, addresses in lists:
        for index, address in enumerate(addresses):
            fields.setdefault(address.envelope, f"{name}[{index}]")
    return fields


def _fix(recipient: RecipientResult) -> str:
    if recipient.status == "suppressed":
        return SUPPRESSED.format(email=recipient.email)
    answer = " ".join(str(part) for part in (recipient.code, recipient.reason) if part is not None)
    said = f" ({answer})" if answer else ""
    return f"{recipient.email} was refused by the upstream{said}; check the address"


def named(outcome: Outcome, lists: Iterable[tuple[str, Sequence[Address]]]) -> Outcome:
    """``outcome``, a refusal of every recipient given the field of each (``errors``) from the request's address
    ``lists`` (each field's name and addresses); any other outcome as it is."""
    if isinstance(outcome, RecipientsRefusedError) and not outcome.errors:
        fields = _fields(lists)
        outcome.errors = tuple(FieldError(fields[r.email], _fix(r)) for r in outcome.recipients if r.email in fields)
    return outcome
