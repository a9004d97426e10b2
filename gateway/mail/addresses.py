"""Email addresses: parsed and validated once, then carried as ``Address`` values to the headers and envelope.

email_validator checks the address itself (and gives the ASCII form of an internationalised domain); the
standard library splits off and quotes the display name.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.headerregistry import Address as HeaderAddress
from email.utils import getaddresses, parseaddr
from functools import lru_cache

import email_validator

from mail_gateway.errors import InvalidMessageError


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


# email_validator costs tens of microseconds an address, and the same senders and recipients come back
# request after request; the function is pure, and errors (raised, so never cached) are rare.
@lru_cache(maxsize=4096)
def parse_address(value: str) -> Address:
    """Validate one address, ``a@x.org`` or ``Name <a@x.org>``; raise ``ValueError`` saying what is wrong.

    Display names may be non-ASCII and domains internationalised; the local part must be ASCII because
    the gateway does not speak SMTPUTF8.
    """
    if "\r" in value or "\n" in value:
        raise ValueError("must not contain CR or LF (header injection)")
    parsed = getaddresses([value])
    if len(parsed) != 1 or not parsed[0][1]:
        raise ValueError(f"{value!r} is not one email address; use 'a@example.com' or 'Name <a@example.com>'")
    name, spec = parsed[0]
    try:
        checked = email_validator.validate_email(spec, check_deliverability=False, allow_smtputf8=False)
    except email_validator.EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not a valid email address: {exc}") from exc
    text = str(HeaderAddress(display_name=name, addr_spec=checked.normalized)) if name else checked.normalized
    return Address(text, name, checked.normalized, checked.ascii_email or checked.normalized)


def normalize_address(value: str) -> str:
    """The canonical form of one address (see ``parse_address``)."""
    return parse_address(value).text


@lru_cache(maxsize=4096)  # pure, and called for every address of every message rendered
def addr_spec(address: str) -> str:
    """``'Name <a@x.org>'`` -> ``'a@x.org'``, for addresses that were not validated on their way in (a
    flask-mailman message's); raises ``InvalidMessageError``."""
    if "\r" in address or "\n" in address:
        raise InvalidMessageError(f"address {address!r} contains a line break", field="address")
    _, spec = parseaddr(address)
    if "@" not in spec:
        raise InvalidMessageError(f"{address!r} is not an email address", field="address")
    return spec


@lru_cache(maxsize=4096)
def envelope_address(spec: str) -> str:
    """The ASCII form of an address for the SMTP envelope (IDN domain in punycode).

    The null reverse-path of bounces and notifications (``""`` or ``"<>"``) stays empty: smtplib sends it
    as ``MAIL FROM:<>``.
    """
    if spec in ("", "<>"):
        return ""
    local, _, domain = spec.rpartition("@")
    try:
        domain.encode("ascii")
    except UnicodeEncodeError:
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}"


def address_domain(spec: str) -> str:
    """The ASCII domain of an address, for Message-IDs; ``localhost`` when it has none that encodes."""
    try:
        return envelope_address(spec).rpartition("@")[2] or "localhost"
    except UnicodeError:
        return "localhost"
