"""What a message needs from the upstream beyond plain SMTP, and what it gets when the upstream lacks it.

- 8-bit data (RFC 6152): to an upstream that announced 8BITMIME it goes as it is, with ``BODY=8BITMIME`` in
  ``MAIL FROM``; to one that did not, it is downgraded as Postfix does — 8-bit body parts re-encoded as
  quoted-printable or base64 (``mail_gateway.mail.sevenbit``) — or, where that cannot make it 7-bit, refused
  with ``ExtensionMissingError``. 8-bit data is never sent as it is to an upstream that did not ask for it. A
  message a pipeline step signed arrives here 7-bit already (``mail_gateway.sending.pipeline``), as it must reach
  whichever upstream takes it exactly as it was signed.
- A non-ASCII local part (RFC 6531): sent, with ``SMTPUTF8`` in ``MAIL FROM``, only to an upstream that
  announced SMTPUTF8, and refused with ``ExtensionMissingError`` otherwise. Domains never need it: they are
  IDNA-encoded before they get here. ``SMTPUTF8`` is also said for UTF-8 header text where it is offered.
"""

from __future__ import annotations

import smtplib

from mail_gateway.errors import ExtensionMissingError, InvalidMessageError, PermanentDeliveryError
from mail_gateway.mail.addresses import envelope_address
from mail_gateway.mail.rendering import RenderedMessage, header_fields
from mail_gateway.mail.sevenbit import seven_bit_message

BACKEND = "smtp"


def envelope(message: RenderedMessage, upstream: str) -> tuple[str, list[str]]:
    """The reverse-path and the forward-paths as they go on the wire (IDNA-encoded domains)."""
    try:
        return envelope_address(message.envelope_from), [envelope_address(r) for r in message.recipients]
    except InvalidMessageError as exc:
        raise PermanentDeliveryError(f"{upstream}: {exc}", backend=BACKEND, upstream=upstream,
                                     message_id=message.message_id, client_detail=str(exc)) from exc


def _missing(upstream: str, extension: str, detail: str, message_id: str) -> ExtensionMissingError:
    return ExtensionMissingError(f"{upstream}: {detail}; it was not sent", extension=extension, backend=BACKEND,
                                 upstream=upstream, message_id=message_id,
                                 client_detail=f"{detail[0].upper()}{detail[1:]}; it was not sent.")


def prepared(conn: smtplib.SMTP, message: RenderedMessage, addresses: list[str],
             upstream: str) -> tuple[bytes, list[str]]:
    """The bytes to send this upstream and the ``MAIL FROM`` parameters they need; raises
    ``ExtensionMissingError`` when the upstream cannot take the message."""
    data, options = message.data, []
    wide = next((a for a in addresses if not a.isascii()), None)
    if wide is not None:
        if not conn.has_extn("smtputf8"):
            raise _missing(upstream, "SMTPUTF8", f"the address {wide!r} has a non-ASCII local part, which needs "
                           "SMTPUTF8 (RFC 6531), and the upstream does not announce it", message.message_id)
        options.append("SMTPUTF8")
    if data.isascii():
        return data, options
    if conn.has_extn("8bitmime"):
        options.append("BODY=8BITMIME")
        if wide is None and conn.has_extn("smtputf8") and not b"".join(header_fields(data)[0]).isascii():
            options.append("SMTPUTF8")  # UTF-8 header text (RFC 6532)
        return data, options
    try:
        return seven_bit_message(data), options
    except ValueError as exc:
        raise _missing(upstream, "8BITMIME", f"the message holds 8-bit data, the upstream does not announce "
                       f"8BITMIME (RFC 6152), and it cannot be re-encoded: {exc}", message.message_id) from exc
