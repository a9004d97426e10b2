"""Who may send as whom: ``GATEWAY_ALLOWED_SENDERS``, the addresses a client may use as envelope sender, From
and Sender.

Entries are separated by commas or white space::

    alerts@example.com                 that address
    @example.com                       any address at that domain (not its subdomains)
    key:billing=@billing.example.com   only for the API key named billing (GATEWAY_API_KEYS=billing:<key>)
    user:cron=cron@example.com         only for the SMTP ingress user cron (GATEWAY_SMTP_USERS)

A client with entries of its own (an API key or an ingress user named in them) may send only as those; every
other client — other keys, the API without keys, the ingress without AUTH, the library and the CLI — only as
the entries without a prefix, and not at all when there are none. Unset, anyone may send as anyone.

Addresses match without regard to case, domains in their IDNA 2008 form (``idna``, as everywhere else).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import idna
from pydantic import Field, field_validator

from mail_gateway.settings.core import Subject

_SCOPED = re.compile(r"(key|user):([^=\s]+)=(.*)", re.DOTALL)
NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # the name of an API key (GATEWAY_API_KEYS=name:key)


DIGEST_OWNER = "sha256:"  # an unnamed key's owner; a name never holds a colon, so the two never meet


@dataclass(frozen=True)
class Client:
    """Who asks to send: an API key by its name, an ingress user, or neither (anonymous, library, CLI)."""

    api_key: str | None = None
    smtp_user: str | None = None
    key_digest: str | None = None  # the identity of the API key used, named or not: a digest, never the key

    @property
    def owner(self) -> str | None:
        """Whose the messages it queues are: its API key's name, an unnamed key's digest (a renamed or rotated
        unnamed key is another owner), or nobody's (no key: the open API, the ingress, the library)."""
        if self.api_key is not None:
            return self.api_key
        return DIGEST_OWNER + self.key_digest if self.key_digest is not None else None


def key_name(owner: str | None) -> str | None:
    """The name of the API key that owns a message, as the status API and webhooks show it: None for an unnamed
    key (nothing made of a key is ever shown) and for a message without an owner."""
    return None if owner is None or owner.startswith(DIGEST_OWNER) else owner


ANYONE = Client()


def normalized(address: str) -> str:
    """``Local@Bücher.Example`` -> ``local@xn--bcher-kva.example``; ``@domain`` the same way. ``ValueError``
    when it is no address or its domain has no IDNA 2008 form, whose message never repeats it: what stands in an
    entry of GATEWAY_ALLOWED_SENDERS may be an API key or a password pasted by mistake."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not domain or " " in address.strip():
        raise ValueError("neither an address nor an @domain (such as alerts@example.com or @example.com)")
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True, transitional=False).decode("ascii")
        except idna.IDNAError:
            raise ValueError("a domain with no IDNA 2008 form (check its spelling)") from None
    return f"{local.lower()}@{domain.lower()}"


def _pattern(position: int, text: str) -> str:
    """Entry ``position``'s address or @domain, normalized; an error names the entry by its place alone."""
    try:
        return normalized(text)
    except ValueError as exc:
        raise ValueError(f"entry {position} gives {exc}") from None


@dataclass(frozen=True)
class SenderRules:
    everyone: frozenset[str] = frozenset()
    by_key: Mapping[str, frozenset[str]] = field(default_factory=dict)
    by_user: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def patterns_for(self, client: Client) -> frozenset[str]:
        if client.api_key is not None and client.api_key in self.by_key:
            return self.by_key[client.api_key]
        if client.smtp_user is not None and client.smtp_user in self.by_user:
            return self.by_user[client.smtp_user]
        return self.everyone

    def allows(self, client: Client, address: str) -> bool:
        """Whether ``client`` may use ``address`` (an addr-spec) as sender."""
        try:
            wanted = normalized(address)
        except ValueError:
            return False
        patterns = self.patterns_for(client)
        return wanted in patterns or "@" + wanted.rpartition("@")[2] in patterns


def parse_sender_rules(value: str) -> SenderRules:
    everyone: set[str] = set()
    by_key: dict[str, set[str]] = {}
    by_user: dict[str, set[str]] = {}
    for position, entry in enumerate(value.replace(",", " ").split(), start=1):
        scoped = _SCOPED.fullmatch(entry)
        if scoped is None and re.match(r"(key|user):", entry):
            # Not echoed: what follows key: or user: may be the key or password itself, pasted by mistake.
            raise ValueError(f"entry {position} begins with key: or user: but gives no =address; write "
                             "key:NAME=address or user:NAME=address")
        if scoped is None:
            everyone.add(_pattern(position, entry))
            continue
        kind, name, pattern = scoped.groups()
        (by_key if kind == "key" else by_user).setdefault(name, set()).add(_pattern(position, pattern))
    if not (everyone or by_key or by_user):
        raise ValueError("it lists no address or @domain")
    return SenderRules(frozenset(everyone), {k: frozenset(v) for k, v in by_key.items()},
                       {u: frozenset(v) for u, v in by_user.items()})


class SenderSettings(Subject):
    gateway_allowed_senders: str | None = Field(
        None, description="set it to the addresses and @domains clients may send as, separated by commas, e.g. "
        "'@example.com, key:billing=billing@example.com, user:cron=cron@example.com' (or leave it unset)")

    @field_validator("gateway_allowed_senders")
    @classmethod
    def _well_formed(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_sender_rules(value)
        return value

    @property
    def sender_rules(self) -> SenderRules | None:
        """The policy, or None when anyone may send as anyone."""
        if self.gateway_allowed_senders is None:
            return None
        return parse_sender_rules(self.gateway_allowed_senders)
