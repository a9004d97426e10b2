"""The ``dkim`` pipeline step: signs each message whose From domain has a key in ``GATEWAY_DKIM_KEYS``.

Each key of the domain adds its own ``DKIM-Signature`` field on top of the message: with an RSA and an Ed25519
key, both (``rsa-sha256`` and ``ed25519-sha256``, RFC 8463's transition), so receivers that know only RSA still
verify one. The fields signed are ``GATEWAY_DKIM_HEADERS`` that the message holds, and From, To, Subject, Date
and Message-ID once more than it holds them (oversigned, RFC 6376 8.15): a field of those added on the way
breaks the signature. A message whose From domain has no key goes on unsigned; signatures it already carries
(a relayed message's) are kept as they are. The step comes last and after ``transfer-encoding``, so what it
signs is what every upstream receives. The fields themselves are made by ``dkim_signature``, which reads the
message once for all of its signatures.

The delivery log's ``dkim=`` field names the selectors whose signatures a message carries (``signed_by``), read
from the message itself: a queued message is stored as bytes, and its worker's log line says the same.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from email.utils import getaddresses
from typing import TYPE_CHECKING

import idna
from dkim.util import InvalidTagValueList, parse_tag_value

from mail_gateway.mail.rendering import RenderedMessage, header_fields
from mail_gateway.sending.dkim_keys import DkimKey, load_keys
from mail_gateway.sending.dkim_signature import MessageSignatures
from mail_gateway.sending.pipeline import DKIM as NAME
from mail_gateway.settings.dkim import DkimSettings

if TYPE_CHECKING:
    from mail_gateway.sending.pipeline import StepContext

OVERSIGNED = (b"from", b"to", b"subject", b"date", b"message-id")
_DKIM_SIGNATURE = b"dkim-signature"


def _domain(address: str) -> str | None:
    domain = address.rpartition("@")[2].strip().rstrip(".").lower()
    if domain.isascii():
        return domain or None
    try:
        return idna.encode(domain, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError:
        return None


def from_domains(fields: Sequence[bytes]) -> list[str]:
    """The domains of the From field's addresses, in order, each once."""
    values = [f.partition(b":")[2].decode("utf-8", "surrogateescape").replace("\r\n", "").replace("\n", "")
              for f in fields if f.partition(b":")[0].strip().lower() == b"from"]
    domains = (_domain(address) for _, address in getaddresses(values) if "@" in address)
    return list(dict.fromkeys(d for d in domains if d))


@dataclass(frozen=True)
class DkimSigning:
    """The ``dkim`` step (see the module's docstring)."""

    keys: tuple[DkimKey, ...]
    headers: tuple[str, ...]  # GATEWAY_DKIM_HEADERS, lower case
    canonicalization: str = "relaxed/relaxed"
    name: str = NAME
    signs: bool = True

    @classmethod
    def from_settings(cls, settings: DkimSettings) -> DkimSigning | None:
        """The step ``GATEWAY_DKIM_KEYS`` calls for, its keys read and checked; None without keys."""
        keys = load_keys(settings.dkim_key_sources)
        if not keys:
            return None
        return cls(keys, settings.dkim_headers, settings.gateway_dkim_canonicalization)

    def _signed_fields(self, names: Sequence[bytes]) -> list[bytes]:
        counts = Counter(names)
        listed: list[bytes] = []
        for header in (name.encode("ascii") for name in self.headers):
            listed += [header] * (counts[header] + (1 if header in OVERSIGNED else 0))
        return listed

    def __call__(self, message: RenderedMessage, context: StepContext) -> RenderedMessage:
        fields, _ = header_fields(message.data)
        domains = from_domains(fields)
        keys = [key for domain in domains for key in self.keys if key.domain == domain]
        if not keys:
            return message
        listed = self._signed_fields([f.partition(b":")[0].strip().lower() for f in fields])
        signatures = MessageSignatures(message.data, self.canonicalization)
        now = int(time.time())
        return replace(message, data=b"".join(signatures.field(key, listed, now) for key in keys) + message.data)

    def signed_by(self, data: bytes) -> tuple[str, ...]:
        """The selectors of this gateway's keys whose signatures ``data`` carries, top to bottom."""
        ours = {(key.domain.encode("ascii"), key.selector.encode("ascii")) for key in self.keys}
        found: list[str] = []
        for item in header_fields(data)[0]:
            name, _, value = item.partition(b":")
            if name.strip().lower() != _DKIM_SIGNATURE:
                continue
            try:
                tags = parse_tag_value(value)
            except InvalidTagValueList:
                continue
            if (tags.get(b"d", b"").lower(), tags.get(b"s", b"").lower()) in ours:
                found.append(tags[b"s"].decode("ascii", "replace"))
        return tuple(found)
