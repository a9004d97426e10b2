"""Read a kept message's bytes back into what a person looks for: addresses, subject, text, HTML, attachments.

The outbox API, the outbox page, the console summary and the test fixture all show the same reading, so a
message looks the same wherever it is inspected. The standard library's ``email`` package does the parsing;
only the choice of which parts are "the body" and which are attachments is made here. Address headers are read
with the parser the sender validates addresses with (``mail_gateway.mail.addresses``), so a display name with a
comma or an encoded-word is one address, as it was sent.
"""

from __future__ import annotations

import email
import email.policy
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage

from mail_gateway.errors import InvalidMessageError
from mail_gateway.mail.addresses import envelope_address, header_addresses, recipient_key
from mail_gateway.mail.long_address_lists import ADDRESS_FIELDS, WHOLE, read_long
from mail_gateway.mail.mime_tree import (
    alternatives,
    attachment,
    find_bodies,
    header_text,
    leaves,
    parsable,
    part_text,
    reading,
)
from mail_gateway.mail.rfc5322 import PARSER_FAILURES, parsed_date


def _shown(display_name: str, spec: str) -> str:
    if not display_name:
        return spec
    try:
        return str(Address(display_name=display_name, addr_spec=spec))  # quoted where the name needs it
    except PARSER_FAILURES:
        return f"{display_name} <{spec}>"


def _mailboxes(parsed: EmailMessage, name: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for field, raw in parsed.raw_items():
        if field.lower() != name.lower():
            continue
        mailboxes = _field_mailboxes(raw)
        if mailboxes is None:  # not well-formed: what the lenient reading finds, rather than nothing
            try:
                mailboxes = [(a.display_name, a.addr_spec) for a in parsed.policy.header_fetch_parse(
                    field, raw).addresses]  # type: ignore[attr-defined]
            except PARSER_FAILURES:
                mailboxes = []
        found += [(display, spec) for display, spec in mailboxes if spec]
    return found


def _field_mailboxes(raw: str) -> list[tuple[str, str]] | None:
    """An address field's mailboxes; None where it is no well-formed address list."""
    if not raw.isascii():  # UTF-8 header text (RFC 6532), kept as surrogate escapes by the parser
        raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    unfolded = raw.replace("\r", "").replace("\n", "")  # RFC 5322 2.2.3
    if len(unfolded) > WHOLE:  # the parser's time grows with the square of some fields' length
        return [(display, spec) for display, spec in read_long(unfolded) if spec]
    return header_addresses(unfolded)


def _key(spec: str) -> str:
    try:
        return recipient_key(envelope_address(spec))
    except ValueError:  # a domain with no IDNA encoding: compared as it is written
        return recipient_key(spec)


UNREADABLE = ("it nests too deeply to be read: MIME parts within parts, or comments within comments in a header "
              "field such as Content-Type, hundreds deep")


class MessageReader:
    """One message, parsed once from its RFC 5322 bytes."""

    def __init__(self, data: bytes, recipients: tuple[str, ...] = ()) -> None:
        self.data = data
        self.recipients = recipients  # the envelope, when known: it includes Bcc, which no header shows
        try:
            self.parsed: EmailMessage = email.message_from_bytes(data, _class=reading(), policy=email.policy.default)
            self._text_part, self._html_part = find_bodies(self.parsed)
            bodies = {id(self._text_part), id(self._html_part)}
            others = [leaf for leaf in leaves(self.parsed) if id(leaf) not in bodies]
            # Shown among the attachments too (the outbox offers a calendar invitation for download).
            self.alternatives = alternatives(self.parsed, bodies)
            alternative = {id(part) for part in self.alternatives}
            # A forwarded message's bytes are written back by the standard library's generator, which recurses too.
            self.attachments = [attachment(index, leaf, id(leaf) in alternative) for index, leaf in enumerate(others)]
        except RecursionError:  # the standard library's parsers recurse once per level of parts, or of comments
            raise InvalidMessageError(UNREADABLE, field="data") from None

    @property
    def message_id(self) -> str:
        return header_text(self.parsed, "Message-ID")

    @property
    def subject(self) -> str:
        return header_text(self.parsed, "Subject")

    @property
    def from_(self) -> str:
        found = _mailboxes(self.parsed, "From")
        return _shown(*found[0]) if found else header_text(self.parsed, "From")

    @property
    def to(self) -> list[str]:
        return [_shown(*mailbox) for mailbox in _mailboxes(self.parsed, "To")]

    @property
    def cc(self) -> list[str]:
        return [_shown(*mailbox) for mailbox in _mailboxes(self.parsed, "Cc")]

    @property
    def reply_to(self) -> list[str]:
        return [_shown(*mailbox) for mailbox in _mailboxes(self.parsed, "Reply-To")]

    @property
    def bcc(self) -> list[str]:
        """Envelope recipients that no To or Cc header names: the blind copies. Addresses are compared as
        mailboxes (the domain IDNA-encoded and in any case), as the envelope de-duplicates them."""
        shown = {_key(spec) for name in ("To", "Cc") for _, spec in _mailboxes(self.parsed, name)}
        return [r for r in self.recipients if _key(r) not in shown]

    @property
    def date(self) -> datetime | None:
        return parsed_date(header_text(self.parsed, "Date"))

    @property
    def text(self) -> str | None:
        return None if self._text_part is None else part_text(self._text_part)

    @property
    def html(self) -> str | None:
        return None if self._html_part is None else part_text(self._html_part)

    @property
    def headers(self) -> list[tuple[str, str]]:
        decoded: list[tuple[str, str]] = []
        for name, raw in self.parsed.raw_items():
            long = name.lower() in ADDRESS_FIELDS and len(raw) > WHOLE  # not parsed whole (``long_address_lists``)
            if long and (mailboxes := _field_mailboxes(raw)) is not None:
                decoded.append((name, ", ".join(_shown(*mailbox) for mailbox in mailboxes)))
                continue
            try:
                cut = parsable(name, raw) is not raw  # its parameters not all read: shown as written
                value = str(raw) if cut else str(self.parsed.policy.header_fetch_parse(name, raw))
            except PARSER_FAILURES:  # show it as it was written
                value = str(raw)
            decoded.append((name, value))
        return decoded
