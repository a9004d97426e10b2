"""Email address validation shared by the HTTP schema, the settings and the backends."""

from __future__ import annotations

from email.headerregistry import Address
from email.utils import getaddresses
from functools import lru_cache

import email_validator


# email_validator costs tens of microseconds an address, and the same senders and recipients come back
# request after request; the function is pure, and errors (raised, so never cached) are rare.
@lru_cache(maxsize=4096)
def normalize_address(value: str) -> str:
    """Validate one address, ``a@x.org`` or ``Name <a@x.org>``, and return it in canonical form.

    Display names may be non-ASCII and domains internationalised; the local part must be ASCII because
    the gateway does not speak SMTPUTF8. Raises ``ValueError`` with a message fit for the caller.
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
    if not name:
        return checked.normalized
    return str(Address(display_name=name, addr_spec=checked.normalized))


@lru_cache(maxsize=4096)
def envelope_address(addr_spec: str) -> str:
    """The ASCII form of an address for the SMTP envelope (IDN domain in punycode).

    The null reverse-path of bounces and notifications (``""`` or ``"<>"``) stays empty: smtplib sends it
    as ``MAIL FROM:<>``.
    """
    if addr_spec in ("", "<>"):
        return ""
    local, _, domain = addr_spec.rpartition("@")
    try:
        domain.encode("ascii")
    except UnicodeEncodeError:
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}"
