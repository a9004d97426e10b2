"""A host the gateway connects to (MAIL_SERVER, each MAIL_URL upstream, GATEWAY_OUTBOX_RELEASE_URL, a webhook URL's
host), checked at start-up as the connection would read it, so one that cannot be reached as written stops
start-up instead of failing every send; and the one way every URL setting is split into its parts. Messages never
repeat the host or any part of a URL: it may hold a secret."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

from mail_gateway.settings.dkim import signing_domain

# Letters, digits, '-' and '_' (container and service names have them) in dot-separated labels, a final dot allowed.
_HOST_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?")
UNREADABLE_URL = ("it cannot be read as a URL: a character before its path reads as '@', ':', '/', '?' or '#' once "
                  "Unicode-normalized (NFKC), such as a full-width @ or :, or its IPv6 address in [ ] is incomplete "
                  "or invalid; percent-encode such a character in a user name or password, and write the host in "
                  "ASCII")


def split_url(text: str) -> SplitResult:
    """``urlsplit(text)``, or ``ValueError`` repeating no part of it: urllib's own error quotes the whole authority,
    password included, for a character that NFKC turns into a delimiter (a full-width @ in a password), so no
    setting may pass it on. The port is the caller's to read (``.port``) and word."""
    try:
        return urlsplit(text)
    except ValueError:
        raise ValueError(UNREADABLE_URL) from None


def check_host(host: str, scheme: str | None = None) -> str:
    """``host`` (a name or an IP address, IPv6 without brackets), or ``ValueError`` saying what to fix; ``scheme``
    writes the A-label form of a host not in ASCII as a URL of it."""
    if any(char.isspace() or not char.isprintable() for char in host):
        raise ValueError("its host holds a space or a control character; remove it")
    if not host.isascii():
        # Python's "idna" codec, which sockets use, is IDNA 2003 and maps faß.de to fass.de: another domain.
        try:
            ascii_host = signing_domain(host)
        except ValueError:
            raise ValueError("its host has no IDNA 2008 form; check its spelling") from None
        written = f"{scheme}://{ascii_host}" if scheme else ascii_host
        raise ValueError(f"its host is not ASCII; write it in IDNA 2008 A-labels: {written}")
    if "%" in host and ":" in host:
        raise ValueError("its IPv6 address has a zone (%25...), which the gateway cannot connect with; use a "
                         "global address or a host name")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOST_NAME.fullmatch(host):
            raise ValueError("its host is not a host name or an IP address (letters, digits, '-', '_' and dots; "
                             "a port, a path or a URL belongs elsewhere)") from None
    return host
