"""Settings of the HTTP API: who may call it, and how much one request may carry. (Idempotency keys live in the
store: ``settings/store.py``.)"""

from __future__ import annotations

import ipaddress
import re

from pydantic import Field, SecretStr, field_validator

from mail_gateway.settings.core import MAX_MESSAGE_BYTES, Subject
from mail_gateway.settings.senders import NAME

# A name as Host carries it: ASCII labels (underscores too, as container names have), a leading dot for every
# subdomain. Compared with the Host header's name, which never holds a port, brackets or a final dot.
_HOST_NAME = re.compile(r"\.?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")


def _allowed_host(entry: str) -> str:
    name = entry.strip().lower().removesuffix(".")
    if name == "*" or _HOST_NAME.fullmatch(name):
        return name
    try:
        return str(ipaddress.ip_address(name.removeprefix("[").removesuffix("]")))
    except ValueError:
        pass
    if ":" in name:
        raise ValueError(f"{entry.strip()!r} holds a port or is no address; give the name alone "
                         "('mail.example.com', not 'mail.example.com:8000')")
    if not name.isascii():
        raise ValueError(f"{entry.strip()!r} is not ASCII; give the name as Host carries it, its xn-- form")
    raise ValueError(f"{entry.strip()!r} is not a host name; give names such as 'mail.example.com' or '.internal'")


def _key_and_name(entry: str) -> tuple[str, str | None]:
    """``billing:k-123`` -> ``("k-123", "billing")``; an entry that is no ``name:key`` is a key without a name."""
    name, colon, key = entry.partition(":")
    named = bool(colon) and bool(key) and NAME.fullmatch(name) is not None
    return (key, name) if named else (entry, None)


class HttpApiSettings(Subject):
    # A plain comma-separated string, not list[str]: pydantic-settings would insist on JSON for a list.
    gateway_api_keys: SecretStr | None = Field(
        None, description="set it to one or more API keys separated by commas, each optionally named "
        "(name:key), e.g. 'key-one,billing:key-two'"
    )
    gateway_allow_anonymous: bool = Field(
        False, description="set it to true to serve /v1 without API keys in production, or false"
    )
    gateway_admin_keys: str | None = Field(
        None, description="set it to the names of the API keys that see and act on every queued message, separated "
        "by commas, each named in GATEWAY_API_KEYS as name:key (or leave it unset)"
    )
    gateway_max_batch: int = Field(
        500, ge=1, le=10_000, description="set it to how many messages one batch may hold (1 to 10000)"
    )
    gateway_max_message_bytes: int = Field(
        25 * 1024 * 1024, ge=1024, le=MAX_MESSAGE_BYTES,
        description="set it to the largest request body in bytes, from 1024 to 1073741824 (1 GiB)",
    )
    gateway_max_recipients: int = Field(
        100, ge=1, le=10_000, description="set it to how many recipients one message may have (1 to 10000)"
    )
    gateway_http_max_connections: int = Field(
        2000, ge=10, le=100_000,
        description="set it to how many HTTP connections may be open at once, idle ones included (10 to 100000)",
    )
    gateway_http_idle_timeout: float = Field(
        10.0, gt=0, le=3600,
        description="set it to the seconds an idle keep-alive connection is kept open (more than 0, at most 3600)",
    )
    gateway_http_request_timeout: float = Field(
        60.0, gt=0, le=3600,
        description="set it to the seconds a request's headers and body may take to arrive (more than 0, at most "
        "3600)",
    )
    gateway_allowed_hosts: str | None = Field(
        None,
        description="set it to the host names clients use, separated by commas, e.g. 'mail.example.com,.internal' "
        "(a leading dot allows every subdomain; * allows any name)",
    )

    @field_validator("gateway_allowed_hosts")
    @classmethod
    def _host_names(cls, value: str | None) -> str | None:
        # An entry no Host could match (a port, brackets, a space) would refuse every request sent with it.
        if value is None:
            return None
        return ",".join(_allowed_host(entry) for entry in value.split(",") if entry.strip())

    @field_validator("gateway_api_keys")
    @classmethod
    def _some_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        if not value.get_secret_value().strip():
            return None
        keys = [key.strip() for key in value.get_secret_value().split(",")]
        if not all(keys):
            raise ValueError("it holds an empty key (two commas in a row, or a trailing comma)")
        # Printable ASCII only: a header's bytes reach the gateway as Latin-1, so a key with another character
        # could never be presented in an Authorization header.
        if any(not key.isascii() or not key.isprintable() or " " in key for key in keys):
            raise ValueError("a key contains a space, a control character or a character that is not ASCII")
        pairs = [_key_and_name(key) for key in keys]
        names = [name for _, name in pairs if name is not None]
        if len(set(names)) != len(names):
            raise ValueError("two keys have the same name (name:key)")
        # Once under two names, a key kept only the last, and a rule naming the other named no key.
        if len({key for key, _ in pairs}) != len(pairs):
            raise ValueError("it lists one key twice (alone or under a name); list each key once")
        return SecretStr(",".join(keys))

    @field_validator("gateway_admin_keys")
    @classmethod
    def _admin_key_names(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not all(NAME.fullmatch(name) for name in value.replace(",", " ").split()):
            # Not echoed: a key pasted here by mistake must not reach an error message.
            raise ValueError("an entry is not a key name (letters, digits, '.', '_' or '-')")
        return value

    @property
    def admin_key_names(self) -> frozenset[str]:
        """The names of the keys that see every queued message (GATEWAY_ADMIN_KEYS)."""
        return frozenset((self.gateway_admin_keys or "").replace(",", " ").split())

    @property
    def api_keys(self) -> tuple[str, ...]:
        """The configured keys; empty when the API is open."""
        return tuple(self.api_key_names)

    @property
    def api_key_names(self) -> dict[str, str | None]:
        """Each key and its name: an entry ``name:key`` names its key, for GATEWAY_ALLOWED_SENDERS."""
        if self.gateway_api_keys is None:
            return {}
        return dict(_key_and_name(entry) for entry in self.gateway_api_keys.get_secret_value().split(","))
