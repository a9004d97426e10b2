"""The ``dkim`` pipeline step: signs each message whose From domain has a key in ``GATEWAY_DKIM_KEYS``.

Each key of the domain adds its own ``DKIM-Signature`` field on top of the message: with an RSA and an Ed25519
key, both (``rsa-sha256`` and ``ed25519-sha256``, RFC 8463's transition), so receivers that know only RSA still
verify one. The fields signed are ``GATEWAY_DKIM_HEADERS`` that the message holds, and From, To, Subject, Date
and Message-ID once more than it holds them (oversigned, RFC 6376 8.15): a field of those added on the way
breaks the signature. A message whose From domain has no key goes on unsigned; signatures it already carries
(a relayed message's) are kept as they are. The step comes last and after ``transfer-encoding``, so what it
signs is what every upstream receives.

The delivery log's ``dkim=`` field names the selectors whose signatures a message carries (``signed_by``), read
from the message itself: a queued message is stored as bytes, and its worker's log line says the same.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from email.utils import getaddresses
from typing import TYPE_CHECKING

import dkim
import idna
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from dkim.util import InvalidTagValueList, parse_tag_value

from mail_gateway.errors import InvalidMessageError
from mail_gateway.mail.rendering import RenderedMessage, header_fields
from mail_gateway.sending.dkim_keys import RSA, DkimKey, load_keys
from mail_gateway.sending.pipeline import DKIM as NAME
from mail_gateway.settings.dkim import DkimSettings

if TYPE_CHECKING:
    from mail_gateway.sending.pipeline import StepContext

OVERSIGNED = (b"from", b"to", b"subject", b"date", b"message-id")
_DKIM_SIGNATURE = b"dkim-signature"
_RSA_ALGORITHM, _ED25519_ALGORITHM = RSA.encode("ascii"), b"ed25519-sha256"
# A valid Ed25519 seed that signs nothing: what dkimpy reads in place of an RSA key's PEM (see _Signer).
_UNUSED_SEED = base64.b64encode(bytes(32))


@dataclass(frozen=True)
class _Signature:
    signature: bytes


@dataclass(frozen=True)
class _OpenSslRsa:
    """Signs a SHA-256 digest with an RSA key, PKCS #1 v1.5, through OpenSSL."""

    key: rsa.RSAPrivateKey = field(repr=False)

    def sign(self, digest: bytes) -> _Signature:
        return _Signature(self.key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())))


class _Signer(dkim.DKIM):
    """dkimpy's signer, but for the RSA arithmetic itself: dkimpy's is pure Python, about 7 ms for a 2048-bit key
    against OpenSSL's 0.7 ms. The fields chosen, the canonicalization, both hashes and the field's form stay
    dkimpy's; only the digest is handed to OpenSSL. dkimpy signs the same SHA-256 digest through
    ``pk.sign(digest).signature`` on its Ed25519 path, so an RSA signature takes that path with an OpenSSL key.

    ``sign()`` is called as for Ed25519 with ``_UNUSED_SEED`` (see ``DkimSigning._sign``): given an RSA key's PEM,
    dkimpy would read it in pure Python on every message (about 0.2 ms for 2048 bits, nearly a third of what the
    signature itself costs) for a key it never uses here. ``a=`` is set to ``rsa-sha256`` before the field is
    written and hashed, in the list ``sign()`` keeps too.

    One signer reads a message once and makes each of its signatures, as ``sign()`` leaves the message as it
    found it; ``rsa_key`` is the key of the signature being made, None for an Ed25519 one."""

    def __init__(self, message: bytes) -> None:
        super().__init__(message, linesep=b"\r\n")
        self.rsa_key: rsa.RSAPrivateKey | None = None

    def gen_header(self, fields, include_headers, canon_policy, header_name, pk, standardize=False):  # type: ignore[no-untyped-def]
        if self.rsa_key is None:
            return super().gen_header(fields, include_headers, canon_policy, header_name, pk, standardize)
        fields[:] = [(tag, _RSA_ALGORITHM if tag == b"a" else value) for tag, value in fields]
        return super().gen_header(fields, include_headers, canon_policy, header_name, _OpenSslRsa(self.rsa_key),
                                  standardize)


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
    _dkimpy_keys: dict[str, bytes] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Only Ed25519 keys are handed to dkimpy; RSA keys sign through OpenSSL (see _Signer).
        self._dkimpy_keys.update((key.record_name, key.dkimpy_seed()) for key in self.keys
                                 if not isinstance(key.private, rsa.RSAPrivateKey))

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

    def _sign(self, signer: _Signer, key: DkimKey, listed: list[bytes]) -> bytes:
        header, body = (part.encode("ascii") for part in self.canonicalization.split("/"))
        signer.rsa_key = key.private if isinstance(key.private, rsa.RSAPrivateKey) else None
        algorithm = key.algorithm.encode("ascii") if signer.rsa_key is None else _ED25519_ALGORITHM
        private = self._dkimpy_keys[key.record_name] if signer.rsa_key is None else _UNUSED_SEED
        return signer.sign(key.selector.encode("ascii"), key.domain.encode("ascii"), private, algorithm,
                           canonicalize=(header, body), include_headers=listed)

    def __call__(self, message: RenderedMessage, context: StepContext) -> RenderedMessage:
        fields, _ = header_fields(message.data)
        domains = from_domains(fields)
        keys = [key for domain in domains for key in self.keys if key.domain == domain]
        if not keys:
            return message
        listed = self._signed_fields([f.partition(b":")[0].strip().lower() for f in fields])
        try:
            signer = _Signer(message.data)
            signatures = b"".join(self._sign(signer, key, listed) for key in keys)
        except dkim.DKIMException as exc:
            raise InvalidMessageError(f"it cannot be DKIM-signed ({exc}); send a well-formed RFC 5322 message",
                                      field="data") from None
        return replace(message, data=signatures + message.data)

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
