"""DKIM private keys: read from where ``GATEWAY_DKIM_KEYS`` says and checked once, when a sender is built, so a
key that cannot sign stops start-up rather than the first message; made by ``mail-gateway dkim keygen``.

A key file holds a PEM private key (PKCS#8 ``BEGIN PRIVATE KEY``, or PKCS#1 ``BEGIN RSA PRIVATE KEY`` as
OpenDKIM's tools write it), or an Ed25519 key as dkimpy's tools write it: the base64 of its 32-byte seed. RSA keys
must have at least 1024 bits (2048 recommended, RFC 8301), and are signed with ``rsa-sha256``; Ed25519 keys
with ``ed25519-sha256`` (RFC 8463). A key's bytes never appear in a message, a repr or a log.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils

from mail_gateway.errors import ConfigurationError
from mail_gateway.settings.dkim import KeySource

RSA, ED25519 = "rsa-sha256", "ed25519-sha256"
MIN_RSA_BITS = 1024
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


@dataclass(frozen=True)
class DkimKey:
    """One selector's key, ready to sign with."""

    domain: str
    selector: str
    algorithm: str  # rsa-sha256 or ed25519-sha256
    private: PrivateKey = field(repr=False, compare=False)

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def public_value(self) -> str:
        """The public key as the DNS record's ``p=`` holds it."""
        public = self.private.public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            raw = public.public_bytes(*_RAW)
        else:
            raw = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(raw).decode("ascii")

    @property
    def record(self) -> str:
        """The TXT record receivers look up under ``record_name``."""
        kind = "ed25519" if self.algorithm == ED25519 else "rsa"
        return f"v=DKIM1; k={kind}; p={self.public_value}"

    @property
    def zone_entry(self) -> str:
        """The record as a zone file line, its text in strings of at most 255 characters (RFC 1035 3.3.14)."""
        text = self.record
        strings = " ".join(f'"{text[i:i + 255]}"' for i in range(0, len(text), 255))
        return f"{self.record_name}. IN TXT {strings}"

    def sign_digest(self, digest: bytes) -> bytes:
        """The signature of a SHA-256 ``digest``: RSASSA-PKCS1-v1_5 for RSA (RFC 6376 3.3.1), PureEdDSA over the
        digest for Ed25519 (RFC 8463 3). cryptography lets other threads run while OpenSSL makes an RSA signature
        (two threads sign twice as fast as one)."""
        if isinstance(self.private, rsa.RSAPrivateKey):
            return self.private.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
        return self.private.sign(digest)


def _refusal(source: KeySource, problem: str) -> ConfigurationError:
    return ConfigurationError(
        f"GATEWAY_DKIM_KEYS: the key of {source.record_name} ({source.where}) {problem}; set the entry to a "
        "readable unencrypted RSA (2048-bit) or Ed25519 private key, which mail-gateway dkim keygen writes",
        variable="GATEWAY_DKIM_KEYS")


def _read(source: KeySource) -> bytes:
    if source.variable is not None:
        value = os.environ.get(source.variable)
        if not value:
            raise _refusal(source, "cannot be read: the variable is not set")
        return value.encode("utf-8", "replace")
    assert source.path is not None
    try:
        return source.path.read_bytes()
    except OSError as exc:
        raise _refusal(source, f"cannot be read ({exc.strerror or type(exc).__name__})") from None


def parse_private_key(data: bytes) -> PrivateKey | None:
    """The key ``data`` holds, or None when it holds none (or one that is encrypted). Raises nothing that could
    carry the key's bytes."""
    text = data.strip()
    try:
        if b"-----BEGIN" in text:
            key = serialization.load_pem_private_key(text, password=None)
        else:
            key = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, UnsupportedAlgorithm, binascii.Error):
        return None
    return key if isinstance(key, PrivateKey) else None


def load_key(source: KeySource) -> DkimKey:
    key = parse_private_key(_read(source))
    if key is None:
        raise _refusal(source, "is not a private key this gateway can sign with (an unencrypted RSA or Ed25519 "
                               "key, PEM or an Ed25519 seed in base64)")
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise _refusal(source, f"is a {key.key_size}-bit RSA key, which receivers ignore (RFC 8301 asks for "
                                   f"at least {MIN_RSA_BITS} bits)")
        return DkimKey(source.domain, source.selector, RSA, key)
    return DkimKey(source.domain, source.selector, ED25519, key)


def load_keys(sources: tuple[KeySource, ...]) -> tuple[DkimKey, ...]:
    """Every configured key, read and checked; ``ConfigurationError`` naming GATEWAY_DKIM_KEYS otherwise."""
    return tuple(load_key(source) for source in sources)


def new_key(ed25519_key: bool) -> PrivateKey:
    """A new private key: Ed25519, or RSA of 2048 bits."""
    if ed25519_key:
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_file_bytes(key: PrivateKey) -> bytes:
    """``key`` as a key file holds it: PKCS#8 PEM, unencrypted (the file's mode protects it)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
