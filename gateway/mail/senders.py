"""The sender policy applied to a rendered message: whether its client may send as the addresses it claims.

Checked on the bytes every way in produces (composed, raw, relayed, library), so the same rule holds on every
path: the From and Sender header fields, read with the sender's own address parser, and the envelope sender.
A message without a From field that can be read has nothing the policy could allow, and is refused.
"""

from __future__ import annotations

from mail_gateway.errors import SenderNotAllowedError
from mail_gateway.mail.addresses import header_addresses
from mail_gateway.mail.rendering import RenderedMessage, header_fields
from mail_gateway.settings.senders import Client, SenderRules

_CLAIMING_FIELDS = {b"from": "from", b"sender": "sender"}
# The longest From or Sender field read: the standard library's address parser takes time quadratic in some
# fields' length (a display name of 33 folded lines of dots, 32 KB, took 16 s of CPU; 128 KB, 203 s), and a field
# of a few mailboxes is far shorter. A longer one is a field that cannot be read, and the message is refused.
MAX_SENDER_FIELD = 2000


def claimed_senders(message: RenderedMessage) -> list[tuple[str, str]]:
    """``(field, addr-spec)`` of each sender the message claims; an unreadable field gives an empty address."""
    claimed: list[tuple[str, str]] = []
    fields, _ = header_fields(message.data)
    for raw in fields:
        name, _, value = raw.partition(b":")
        label = _CLAIMING_FIELDS.get(name.strip().lower())
        if label is None:
            continue
        text = value.decode("utf-8", "surrogateescape").replace("\r", "").replace("\n", "")
        found = header_addresses(text) if len(text) <= MAX_SENDER_FIELD else None
        claimed += [(label, spec) for _, spec in found or [("", "")]]
    if not any(label == "from" for label, _ in claimed):
        claimed.append(("from", ""))
    if message.envelope_from:  # the null reverse-path of a bounce claims no one
        claimed.append(("mail_from", message.envelope_from))
    return claimed


def _who(client: Client) -> str:
    if client.api_key is not None:
        return f"the API key {client.api_key!r}"
    if client.smtp_user is not None:
        return f"the SMTP user {client.smtp_user!r}"
    return "this client"


def sender_refusal(rules: SenderRules, client: Client, message: RenderedMessage,
                   backend: str) -> SenderNotAllowedError | None:
    """The refusal for the first sender ``client`` may not claim, or None when it may claim them all."""
    for field, address in claimed_senders(message):
        if not address:
            detail = f"the message has no {field.capitalize()} address that can be read"
        elif rules.allows(client, address):
            continue
        else:
            where = "envelope sender" if field == "mail_from" else f"{field.capitalize()} address"
            detail = f"{_who(client)} may not send with {address!r} as {where}"
        return SenderNotAllowedError(f"{detail} (GATEWAY_ALLOWED_SENDERS); send as an address it allows",
                                     field=field, backend=backend, message_id=message.message_id)
    return None
