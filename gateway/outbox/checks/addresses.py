"""Which addresses the link check fetches: public ones, unless GATEWAY_OUTBOX_ALLOW_INTERNAL_LINKS is true.

A kept message's links are whatever its sender wrote. Fetching them all would let anyone who can send mail and
ask for a link check probe the gateway's own network (a cloud's metadata service at 169.254.169.254, an admin page
on localhost, a database's port) and read each answer's status: a server-side request forgery, which Mailpit's
link check had too (CVE-2026-27808) and now refuses by default the same way. The judgement is made on each address
a name resolves to, as the socket is about to connect to it (``lookup.NameLookups.connect``), so a name resolving
to an internal address and a redirect to one are refused alike, and no second lookup can answer otherwise.

The standard library's ``is_global`` calls an IPv6 address that carries an IPv4 one (6to4, NAT64) public whatever
it carries, and multicast ones public: those are judged here by what they carry, and multicast is refused
(Mailpit's follow-up, CVE-2026-55187, was about the carried addresses).
"""

from __future__ import annotations

import ipaddress

ALLOW_SETTING = "GATEWAY_OUTBOX_ALLOW_INTERNAL_LINKS"
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def carried(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (IPv4-mapped, 6to4, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def why_internal(address: str) -> str | None:
    """What kind of internal address ``address`` is ("a loopback address"...), or None for a public one."""
    ip: IPAddress = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        ip = carried(ip) or ip
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "not a public address"
    return None


class InternalAddress(OSError):
    """Every address of a link's host is internal; never leaves the link check, which reports it as that link's
    result."""

    def __init__(self, host: str, address: str, why: str) -> None:
        named = host.strip("[]") if host.strip("[]") == address else f"{host} ({address})"
        super().__init__(f"not fetched: {named} is {why}; set {ALLOW_SETTING}=true to check links to your own "
                         "network")
