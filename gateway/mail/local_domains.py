"""Addresses at domains that only a local network knows: ``no-reply@localhost``, ``it@corp.local``,
``user@example.test``, ``root@mailhost``.

email-validator refuses them, since it looks for addresses that are deliverable from anywhere (the special-use
names of RFC 6761 and 6762, and a domain without a dot). A gateway is also used where they are the point: a
development or test setup, and an internal relay; Flask-Mail, flask-mailman and Django send them, and extensions
use them (Flask-Security-Too's default sender is ``no-reply@localhost``). So the domain is checked here for what
it must be, a name with an IDNA 2008 form, and the local part by email-validator as for any address; whether mail
to it arrives is the upstream's to say, as for any other domain. ``.invalid`` (a name sure to be invalid), ``.onion``
(Tor's, which RFC 7686 asks other software to refuse) and ``.arpa`` (the DNS's own) stay refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import email_validator
import idna

_STAND_IN = "example.com"  # an ordinary domain, under which email-validator checks the local part alone
LOCAL_NAMES = ("localhost", "local", "test")  # RFC 6761's and RFC 6762's names of a local network or a test
STILL_REFUSED = ("invalid", "onion", "arpa")


@dataclass(frozen=True)
class LocalAddress:
    normalized: str
    ascii_email: str | None  # None when the local part is not ASCII (the message needs SMTPUTF8)


def local_domain(domain: str) -> str | None:
    """``domain``'s ASCII form when it is a name email-validator refuses only for being local, else None."""
    try:
        ascii_domain = idna.encode(domain, uts46=True, transitional=False).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError):
        return None
    if _under(ascii_domain, STILL_REFUSED):
        return None
    return ascii_domain if _under(ascii_domain, LOCAL_NAMES) or "." not in ascii_domain else None


def _under(domain: str, names: tuple[str, ...]) -> bool:
    return any(domain == name or domain.endswith("." + name) for name in names)


def validate_local(spec: str) -> LocalAddress | None:
    """``spec`` checked and normalized when its domain is local (``local_domain``); None when it is not, so that
    email-validator's refusal stands. Raises ``EmailNotValidError`` for a local part it refuses."""
    local, at, domain = spec.rpartition("@")
    ascii_domain = local_domain(domain) if at else None
    if ascii_domain is None:
        return None
    checked = email_validator.validate_email(f"{local}@{_STAND_IN}", check_deliverability=False,
                                             allow_smtputf8=True)
    ascii_local = checked.ascii_local_part
    return LocalAddress(f"{checked.local_part}@{idna.decode(ascii_domain)}",
                        f"{ascii_local}@{ascii_domain}" if ascii_local else None)
