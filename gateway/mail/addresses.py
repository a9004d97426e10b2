"""Email addresses: parsed and validated once, then carried as ``Address`` values to the headers and envelope.

One parser reads addresses everywhere — the request fields, flask-mailman messages, the raw route's headers and
the outbox reading mail back: the standard library's RFC 5322 header parser (``email.headerregistry``), which
drops comments instead of promoting them to display names (``a(b@evil.com)@example.com`` is ``a@example.com``)
and decodes encoded-word names as one mailbox. email_validator checks the address itself.

Domains are encoded with IDNA 2008 and UTS #46 (the ``idna`` package, as email_validator does), never with
Python's ``"idna"`` codec: that is IDNA 2003, which maps ``faß.de`` to ``fass.de`` — another domain.
"""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from email.errors import NonASCIILocalPartDefect
from email.headerregistry import Address as HeaderAddress
from functools import lru_cache

import email_validator
import idna

from mail_gateway.errors import HeaderInjectionError, InvalidMessageError
from mail_gateway.mail.local_domains import LocalAddress, validate_local
from mail_gateway.mail.rfc5322 import PARSER_FAILURES, check_header_text

_HEADER_PARSER = email.policy.default  # its header_factory parses address lists by RFC 5322's grammar
# The longest address read, display name included (the composer folds a long name; one of 990 characters is
# sent). The standard library's parser takes time quadratic in some values' length (". " repeated: 1.3 s for
# 16 KB, 19 s for 64 KB).
MAX_ADDRESS = 2000


@dataclass(frozen=True, slots=True)
class Address:
    """One validated address: ``text`` is its canonical form (``Name <a@x.org>``), ``addr_spec`` the bare
    address, ``envelope`` the ASCII form the SMTP envelope carries (an internationalised domain in punycode)."""

    text: str
    display_name: str
    addr_spec: str
    envelope: str

    def __str__(self) -> str:
        return self.text


def _address_header(value: str) -> object | None:
    try:
        header = _HEADER_PARSER.header_factory("To", value)
        header.addresses  # type: ignore[attr-defined]  # noqa: B018 - parsed lazily; fail here, not later
    # It recurses once per comment within a comment, so a field of a thousand "(" (one line) is past the
    # interpreter's limit: that is no address list either.
    except PARSER_FAILURES:
        return None
    # A non-ASCII local part is RFC 6532's internationalised address, not a defect here (it needs SMTPUTF8).
    defects = [d for d in header.defects if not isinstance(d, NonASCIILocalPartDefect)]
    return None if defects else header


def header_addresses(value: str) -> list[tuple[str, str]] | None:
    """``(display name, addr-spec)`` of every mailbox in an address header's value, groups flattened and
    comments dropped; None when the value is not a well-formed address list."""
    header = _address_header(value)
    if header is None:
        return None
    try:  # each mailbox's parts are parsed when first read
        return [(a.display_name, a.addr_spec) for a in header.addresses]  # type: ignore[attr-defined]
    except PARSER_FAILURES:
        return None


def ascii_domain(domain: str) -> str:
    """The domain as the envelope and headers carry it: an internationalised one as IDNA 2008 A-labels."""
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidMessageError(f"the domain {domain!r} has no IDNA 2008 encoding ({exc}); check its spelling",
                                  field="address") from exc


# email_validator costs tens of microseconds an address, and the same senders and recipients come back
# request after request; the function is pure, and errors (raised, so never cached) are rare.
@lru_cache(maxsize=4096)
def parse_address(value: str) -> Address:
    """Validate one address, ``a@x.org`` or ``Name <a@x.org>``; raise ``ValueError`` saying what is wrong.

    Display names may be non-ASCII and domains internationalised. A non-ASCII local part (RFC 6531) is allowed
    too, as the raw route and the ingress allow it: such a message needs an upstream with SMTPUTF8, and the SMTP
    backend refuses it, saying so, where there is none.
    """
    check_header_text(value)
    if len(value) > MAX_ADDRESS:  # before the parser, whose time grows with the square of some values' length
        raise ValueError(f"{value[:40]!r}... is {len(value)} characters long, more than one address may be "
                         f"({MAX_ADDRESS}, display name included); shorten it")
    header = _address_header(value)
    groups = header.groups if header is not None else ()  # type: ignore[attr-defined]
    # One mailbox, not inside a group ("team: a@x.org;"), which has a display name of its own.
    if len(groups) != 1 or groups[0].display_name is not None or len(groups[0].addresses) != 1:
        raise ValueError(f"{value!r} is not one email address; use 'a@example.com' or 'Name <a@example.com>'")
    name, spec = groups[0].addresses[0].display_name, groups[0].addresses[0].addr_spec
    check_header_text(name)  # an encoded-word name is decoded by now, and may have held a control character
    try:
        checked = _validated(spec)
    except email_validator.EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not a valid email address: {exc}") from exc
    text = with_name(name, checked.normalized) if name else checked.normalized
    envelope = checked.ascii_email or _envelope_or_reason(checked.normalized)
    return Address(text, name, checked.normalized, envelope)


def _validated(spec: str) -> email_validator.ValidatedEmail | LocalAddress:
    try:
        return email_validator.validate_email(spec, check_deliverability=False, allow_smtputf8=True)
    except email_validator.EmailNotValidError:
        local = validate_local(spec)  # localhost, *.local, *.test, a name without a dot: see local_domains
        if local is None:
            raise
        return local


def with_name(name: str, spec: str) -> str:
    """``Name <spec>``, the name quoted where it needs it (a comma, a dot...)."""
    if spec.isascii():
        return str(HeaderAddress(display_name=name, addr_spec=spec))  # the name quoted where it needs it
    # The standard library refuses a non-ASCII local part here (it allows one only when parsing): quoted by hand.
    if any(c in name for c in '()<>[]:;@\\,."'):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{spec}>"


def _envelope_or_reason(spec: str) -> str:
    try:
        return envelope_address(spec)
    except InvalidMessageError as exc:
        raise ValueError(str(exc)) from None


def normalize_address(value: str) -> str:
    """The canonical form of one address (see ``parse_address``)."""
    return parse_address(value).text


@lru_cache(maxsize=4096)  # pure, and called for every address of every library message
def mailbox(address: str, field: str = "address") -> tuple[str, str]:
    """``'Name <a@x.org>'`` -> ``('Name', 'a@x.org')``, for addresses that were not validated on their way in
    (a flask-mailman message's); raises ``InvalidMessageError`` naming ``field``."""
    try:
        check_header_text(address)
    except ValueError as exc:
        raise HeaderInjectionError(f"{address!r} {exc}", field=field) from exc
    found = header_addresses(address)
    if not found or len(found) != 1 or "@" not in found[0][1]:
        raise InvalidMessageError(f"{address!r} is not one email address", field=field)
    return found[0]


def addr_spec(address: str) -> str:
    """``'Name <a@x.org>'`` -> ``'a@x.org'`` (see ``mailbox``)."""
    return mailbox(address)[1]


@lru_cache(maxsize=4096)
def envelope_address(spec: str) -> str:
    """The form of an address for the SMTP envelope: its domain in IDNA 2008 A-labels (the local part as it
    is: a non-ASCII one needs SMTPUTF8). Raises ``InvalidMessageError`` when the domain has no encoding.

    The null reverse-path of bounces and notifications (``""`` or ``"<>"``) stays empty: it is sent as
    ``MAIL FROM:<>``.
    """
    if spec in ("", "<>"):
        return ""
    try:
        check_header_text(spec)  # a NUL among them: no server takes one, and PostgreSQL keeps none in text
    except ValueError as exc:
        raise HeaderInjectionError(f"{spec!r} {exc}", field="address") from exc
    local, at, domain = spec.rpartition("@")
    if not at or not local or not domain:
        raise InvalidMessageError(f"{spec!r} is not an email address, which is local-part@domain",
                                  field="address")
    return f"{local}@{ascii_domain(domain)}"


def recipient_key(envelope: str) -> str:
    """What makes two envelope addresses the same mailbox: the local part exactly (RFC 5321 lets the
    receiving host tell case apart there), the domain whatever its case."""
    local, _, domain = envelope.rpartition("@")
    return f"{local}@{domain.lower()}"


def unique_recipients(addresses: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Envelope recipients, each mailbox once (compared in their IDNA 2008 form), in order and as given: one
    ``RCPT TO`` per mailbox. Raises ``InvalidMessageError`` for a domain with no IDNA 2008 form; the SMTP
    backend encodes the others when it sends them."""
    seen: dict[str, str] = {}
    for address in addresses:
        seen.setdefault(recipient_key(envelope_address(address)), address)
    return tuple(seen.values())


def address_domain(spec: str) -> str:
    """The ASCII domain of an address, for Message-IDs; ``localhost`` when it has none that encodes."""
    try:
        return envelope_address(spec).rpartition("@")[2] or "localhost"
    except InvalidMessageError:
        return "localhost"
