"""A host the gateway connects to (MAIL_SERVER, each MAIL_URL upstream, GATEWAY_OUTBOX_RELEASE_URL, a webhook URL's
host), checked at start-up as the connection would read it, so one that cannot be reached as written stops
start-up instead of failing every send. Messages never repeat the host: it may come from a URL holding a secret."""

from __future__ import annotations

import ipaddress
import re

from mail_gateway.settings.dkim import signing_domain

# Letters, digits, '-' and '_' (container and service names have them) in dot-separated labels, a final dot allowed.
_HOST_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?")


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
