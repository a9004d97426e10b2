"""VERP (variable envelope return path): each message leaves with an envelope sender naming it, so a bounce,
which goes to the envelope sender, says which message it is about whatever the remote server writes in it.

With ``GATEWAY_BOUNCE_DOMAIN=bounce.example.com`` a queued message leaves as ``bounces+<queue id>@bounce.example.com``;
a message delivered directly has no queue id, so its token is ``m`` and a digest of its Message-ID, which the
delivery log shows (``message_id=``). The From field is never changed, and a null sender stays null.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import replace

from mail_gateway.mail.rendering import RenderedMessage

LOCAL_PART = "bounces"
_TOKEN = re.compile(r"^[0-9a-z]{1,64}$")
_DIRECT_TOKEN = re.compile(r"m[0-9a-f]{20}")


def bounce_address(domain: str, token: str) -> str:
    return f"{LOCAL_PART}+{token}@{domain}"


def direct_token(message_id: str) -> str:
    """The token of a message delivered directly: ``m`` and 20 hex digits of its Message-ID's SHA-256."""
    return "m" + hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()[:20]


def is_direct_token(token: str) -> bool:
    """Whether ``token`` has the form ``direct_token`` gives."""
    return _DIRECT_TOKEN.fullmatch(token) is not None


def is_bounce_address(address: str, domain: str) -> bool:
    local, sep, host = address.rpartition("@")
    return bool(sep) and host.lower().rstrip(".") == domain.lower() and \
        (local.lower() == LOCAL_PART or local.lower().startswith(LOCAL_PART + "+"))


def token_of(address: str, domain: str) -> str | None:
    """The message token of a bounce address of ``domain``, or None for any other address (or a bad token)."""
    if not is_bounce_address(address, domain):
        return None
    token = address.rpartition("@")[0].partition("+")[2].lower()
    return token if _TOKEN.match(token) else None


def with_bounce_addresses(messages: Sequence[RenderedMessage], domain: str | None) -> list[RenderedMessage]:
    """Messages delivered directly, each with its own bounce address when ``domain`` is set (queued ones get
    theirs when stored, ``Spool``); the sender policy has checked the original senders already."""
    if domain is None:
        return list(messages)
    # A message with the null sender (a bounce, a DSN, an auto-reply) keeps it: RFC 5321 4.5.5, so that a
    # bounce of it goes nowhere rather than back and forth.
    return [replace(m, envelope_from=bounce_address(domain, direct_token(m.message_id))) if m.envelope_from else m
            for m in messages]
