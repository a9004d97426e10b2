"""DKIM signing's settings: which From domains sign with which keys, the header fields signed, the
canonicalization.

``GATEWAY_DKIM_KEYS`` lists ``domain:selector:key`` entries separated by commas, where ``key`` is the path of a
private key file or ``env:NAME``, an environment variable holding the key itself (a secret store's usual way in).
Here only their shape is checked; the keys are read and checked when a sender is built
(``mail_gateway.sending.dkim_keys``), so a key that cannot sign stops start-up as a TLS file does.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import idna
from pydantic import Field, field_validator

from mail_gateway.settings.core import Subject

# RFC 6376 5.4.1's recommendation, with the list fields a bulk sender adds (RFC 2369, RFC 8058).
DEFAULT_HEADERS = ("From, To, Cc, Subject, Date, Message-ID, Reply-To, Sender, In-Reply-To, References, "
                   "MIME-Version, Content-Type, Content-Transfer-Encoding, List-Unsubscribe, List-Unsubscribe-Post")
# Fields that relays add or change on the way (RFC 6376 5.4.1): signing them breaks the signature.
NEVER_SIGNED = ("Return-Path", "Received", "Comments", "Keywords", "Bcc", "Resent-Bcc", "DKIM-Signature")
_SELECTOR = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*")
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")
_FROM_ENVIRONMENT = "env:"
# What a key pasted where its file's path belongs may look like when _is_a_key does not know it for one: base64
# (standard or URL-safe, padded or not), hex, or PEM's body with its line breaks written as \n. Only these
# characters, 32 or more of them (the shortest key, an Ed25519 seed, is 43 in base64 and 64 in hex; 32 leaves
# room for one cut short). Such a path is never shown: a key file's path nearly always holds another character
# (the '.' of example.com.key), and a path left out of a message costs less than a key written into the logs.
_KEY_LIKE = re.compile(r"[A-Za-z0-9+/=_\\-]{32,}")
KEYS_FIX = ("set it to domain:selector:key entries separated by commas, each key a private key file or env:NAME "
            "(an environment variable holding the key), e.g. example.com:s2026:/etc/mail-gateway/example.com.key "
            "(mail-gateway dkim keygen writes one)")


@dataclass(frozen=True)
class KeySource:
    """Where one selector's private key is: a file, or an environment variable. Never the key itself."""

    domain: str  # lower case, IDNA 2008 A-labels
    selector: str  # lower case
    path: Path | None = None
    variable: str | None = None

    @property
    def record_name(self) -> str:
        """The DNS name receivers look the public key up under."""
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def where(self) -> str:
        if self.variable:
            return f"the environment variable {self.variable}"
        if _KEY_LIKE.fullmatch(str(self.path)):
            return "its path is not shown: it may be a key itself, which belongs in a file or in env:NAME"
        return str(self.path)


def signing_domain(text: str) -> str:
    """``Bücher.Example`` -> ``xn--bcher-kva.example``; ``ValueError`` when it has no IDNA 2008 form."""
    try:
        return idna.encode(text.strip().rstrip("."), uts46=True, transitional=False).decode("ascii").lower()
    except idna.IDNAError:
        raise ValueError("the domain has no IDNA 2008 form") from None


def selector_name(text: str) -> str:
    if not _SELECTOR.fullmatch(text.strip()):
        raise ValueError("the selector must be letters, digits and hyphens (dots between labels)")
    return text.strip().lower()


def _is_a_key(text: str) -> bool:
    """Whether ``text``, given where a key file's path belongs, is a key itself: PEM (its line breaks written as
    ``\\n`` or not), or base64 of what a key file holds (an Ed25519 seed of 32 bytes, or DER, a SEQUENCE)."""
    if "-----BEGIN" in text or "PRIVATE KEY" in text:
        return True
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error:
        return False
    return len(text) >= 44 and (len(data) == 32 or data[:1] == b"\x30")


def _source(entry: int, text: str) -> KeySource:
    parts = text.split(":", 2)
    if len(parts) != 3 or not all(part.strip() for part in parts):
        raise ValueError(f"entry {entry} is not domain:selector:key")
    try:
        domain, selector, key = signing_domain(parts[0]), selector_name(parts[1]), parts[2].strip()
    except ValueError as exc:
        raise ValueError(f"in entry {entry}, {exc}") from None
    if _is_a_key(key):  # never repeated: it would be shown as a path that cannot be read
        raise ValueError(f"entry {entry} gives a key itself where its file belongs; write the key to a file and give "
                         "its path, or put it in an environment variable and write env:NAME")
    if not key.startswith(_FROM_ENVIRONMENT):
        return KeySource(domain, selector, path=Path(key).expanduser())
    variable = key.removeprefix(_FROM_ENVIRONMENT)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", variable):
        raise ValueError(f"entry {entry}'s env: must name an environment variable, e.g. env:DKIM_EXAMPLE_KEY")
    return KeySource(domain, selector, variable=variable)


def parse_key_sources(value: str) -> tuple[KeySource, ...]:
    """``ValueError`` naming the entry by its place: an entry may be a pasted key, so it is never repeated."""
    entries = [entry for entry in re.split(r"[,\n]", value) if entry.strip()]
    sources = tuple(_source(number, entry) for number, entry in enumerate(entries, 1))
    names = [source.record_name for source in sources]
    twice = next((name for name in names if names.count(name) > 1), None)
    if twice is not None:
        raise ValueError(f"it names the selector {twice} twice; give each selector one key")
    return sources


def header_names(value: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in re.split(r"[,:\s]+", value) if name.strip())
    if not all(_FIELD_NAME.fullmatch(name) for name in names):
        raise ValueError("it holds something that is no header field name")
    if "from" not in {name.lower() for name in names}:
        raise ValueError("it must list From, which DKIM always signs (RFC 6376 5.4)")
    never = next((name for name in NEVER_SIGNED if name.lower() in {n.lower() for n in names}), None)
    if never is not None:
        raise ValueError(f"it lists {never}, which relays add or change on the way, so its signature would break; "
                         "remove it")
    return tuple(dict.fromkeys(name.lower() for name in names))


class DkimSettings(Subject):
    gateway_dkim_keys: str | None = Field(None, description=KEYS_FIX)
    gateway_dkim_headers: str = Field(
        DEFAULT_HEADERS, description="set it to the header fields to sign, separated by commas, From among them")
    gateway_dkim_canonicalization: Literal["relaxed/relaxed", "relaxed/simple", "simple/relaxed", "simple/simple"] = \
        Field("relaxed/relaxed", description="set it to relaxed/relaxed (the default), relaxed/simple, "
              "simple/relaxed or simple/simple (header/body)")

    @field_validator("gateway_dkim_keys")
    @classmethod
    def _key_entries(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_key_sources(value)
        return value

    @field_validator("gateway_dkim_headers")
    @classmethod
    def _signed_headers(cls, value: str) -> str:
        header_names(value)
        return value

    @property
    def dkim_key_sources(self) -> tuple[KeySource, ...]:
        return () if self.gateway_dkim_keys is None else parse_key_sources(self.gateway_dkim_keys)

    @property
    def dkim_headers(self) -> tuple[str, ...]:
        """The header fields signed, lower case, each once."""
        return header_names(self.gateway_dkim_headers)
