"""Read what comes back to a bounce address: a delivery status notification, an auto-reply, or something else.

A DSN (RFC 3464) is a ``multipart/report; report-type=delivery-status`` whose ``message/delivery-status`` part
holds one block of per-message fields, then one block per recipient (``Final-Recipient``, ``Action``,
``Status``, ``Diagnostic-Code``). Postfix, Exim, Gmail and Microsoft all send this form; the standard library
parses it (a ``message/delivery-status`` payload is a list of header blocks), so no bounce-guessing library is
needed, and a message that is not a DSN is never taken for one: guessing at free text would suppress addresses
on the word of an auto-reply.

Auto-replies (RFC 3834 ``Auto-Submitted``, ``X-Autoreply``, ``Precedence: auto_reply``, vacation subjects) are
told apart, so they are recorded and never suppress anyone.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import Message

from mail_gateway.mail.rfc5322 import PARSER_FAILURES, parsed_leniently
from mail_gateway.mail.storable import storable

KINDS = ("dsn", "autoreply", "unknown")
_STATUS = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})$")
_VACATION = re.compile(r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|auto:|out of (the )?office|"
                       r"abwesenheit|vacation|away from)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    recipient: str  # the address the notification is about (Original-Recipient, else Final-Recipient)
    action: str  # failed, delayed, delivered, relayed, expanded
    status: str  # the enhanced status code, such as 5.1.1 ("" when missing or malformed)
    diagnostic: str  # the remote server's reply (Diagnostic-Code without its type), else the status

    @property
    def permanent(self) -> bool:
        return self.action == "failed" and self.status.startswith("5.")


@dataclass(frozen=True, slots=True)
class Returned:
    kind: str  # one of KINDS
    recipients: tuple[RecipientStatus, ...] = ()
    subject: str = ""


def _unfold(value: object) -> str:
    # A remote server's text, kept as the store can hold it: a NUL in it failed the whole report's record.
    return storable(" ".join(str(value or "").split()))


def _typed_address(value: object) -> str:
    """``rfc822; user@example.com`` -> ``user@example.com`` (RFC 3464 2.3.2: address-type ; address)."""
    kind, sep, address = _unfold(value).partition(";")
    return (address if sep else kind).strip().strip("<>")


def _recipient(block: Message) -> RecipientStatus | None:
    recipient = _typed_address(block.get("Original-Recipient")) or _typed_address(block.get("Final-Recipient"))
    action = _unfold(block.get("Action")).lower()
    if not recipient or not action:
        return None
    status = _unfold(block.get("Status")).split(" ")[0]
    status = status if _STATUS.match(status) else ""
    kind, sep, text = _unfold(block.get("Diagnostic-Code")).partition(";")
    diagnostic = (text if sep else kind).strip() or status
    return RecipientStatus(recipient, action, status, diagnostic)


def _status_part(message: Message) -> Message | None:
    for part in message.walk():
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
            return part
    return None


def _blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    global_status = part.get_content_type() == "message/global-delivery-status"
    if isinstance(payload, list) and not global_status:
        return [block for block in payload if isinstance(block, Message)]
    # message/global-delivery-status (RFC 6533) the parser reads as one message: its first block the header, the
    # others its body. Written back as text, its blocks are parsed here, as are those of a part left as text.
    blocks = payload if isinstance(payload, list) else []
    text = payload if isinstance(payload, str) else "".join(_as_text(block) for block in blocks)
    return [email.message_from_string(block.strip() + "\n") for block in re.split(r"\r?\n\s*\r?\n", text)
            if block.strip()]


def _as_text(block: object) -> str:
    try:
        return block.as_string(maxheaderlen=0) if isinstance(block, Message) else ""
    except PARSER_FAILURES:  # a hostile block: none of its recipients is read
        return ""


def is_autoreply(message: Message) -> bool:
    submitted = _unfold(message.get("Auto-Submitted")).lower()
    if submitted and submitted != "no":
        return True
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return True
    if _unfold(message.get("Precedence")).lower() == "auto_reply":
        return True
    return bool(_VACATION.match(_unfold(message.get("Subject"))))


def read_returned(data: bytes) -> Returned:
    """What ``data``, received at a bounce address, is: a DSN with its recipients' statuses, an auto-reply, or
    unknown."""
    message, _ = parsed_leniently(data)  # where its parts cannot be read, no report is found in them
    subject = _unfold(message.get("Subject"))
    part = _status_part(message) if message.get_content_type() == "multipart/report" else None
    if part is not None:
        found = tuple(r for r in (_recipient(block) for block in _blocks(part)[1:]) if r is not None)
        if found:
            return Returned("dsn", found, subject)
    return Returned("autoreply" if is_autoreply(message) else "unknown", (), subject)
