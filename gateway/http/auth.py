"""API keys: every ``/v1`` route, whichever blueprint adds it, answers 401 without a configured key."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Mapping, Sequence

from flask import Flask, g, request

from mail_gateway.http.headers import one_value
from mail_gateway.http.problems import Problem
from mail_gateway.settings.senders import Client

PROTECTED_PREFIX = "/v1"
ALSO_PROTECTED = ("/metrics",)


def is_protected(path: str) -> bool:
    return path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/") or path in ALSO_PROTECTED


def _presented_key() -> str | None:
    scheme, _, token = (one_value("Authorization") or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def matches_any(presented: str, keys: Sequence[bytes]) -> bool:
    candidate = presented.encode("utf-8", "surrogateescape")
    matched = False
    for key in keys:  # no early exit: the time taken does not say which key, or whether any, matched
        matched |= hmac.compare_digest(candidate, key)
    return matched


def presents_a_key(keys: Sequence[bytes]) -> bool:
    """Whether the request carries ``Authorization: Bearer`` with one of ``keys`` (encoded)."""
    presented = _presented_key()
    return presented is not None and matches_any(presented, keys)


def unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, "unauthorized",
                   headers={"WWW-Authenticate": 'Bearer realm="mail-gateway"'})


def current_client() -> Client:
    """Who sends in this request, for GATEWAY_ALLOWED_SENDERS: the name of its API key, where it has one; and the
    owner of what it queues (``Client.owner``)."""
    return Client(api_key=g.get("api_key_name"), key_digest=g.get("client_id"))


def owner_in_view(admin_keys: Collection[str]) -> str | None:
    """Whose queued messages this request sees and acts on: its API key's own (``Client.owner``), or every one
    (None) for a key named in GATEWAY_ADMIN_KEYS and for the open API."""
    client = current_client()
    return None if client.api_key in admin_keys else client.owner


def register_api_keys(app: Flask, keys: Sequence[str], names: Mapping[str, str | None] | None = None) -> None:
    """Check ``Authorization: Bearer <key>`` before every request to a ``/v1`` path. Without keys the API is
    open (building the service refuses that in production unless GATEWAY_ALLOW_ANONYMOUS=true). ``names`` gives
    each key's name (``GATEWAY_API_KEYS=name:key``)."""
    encoded = [key.encode("utf-8") for key in keys]
    names = names or {}
    if not encoded:
        return  # every request is the anonymous client: the default of ``g.client_id`` and ``g.api_key_name``

    @app.before_request
    def _require_api_key() -> None:
        if not is_protected(request.path):
            return
        presented = _presented_key()
        if presented is None:
            raise unauthorized("Send an API key as 'Authorization: Bearer <key>' (the keys are GATEWAY_API_KEYS).")
        if not matches_any(presented, encoded):
            raise unauthorized("The API key is not valid; send one of the keys configured in GATEWAY_API_KEYS.")
        # Scopes idempotency keys per client without ever storing the key itself.
        g.client_id = hashlib.sha256(presented.encode("utf-8")).hexdigest()[:32]
        g.api_key_name = names.get(presented)  # looked up only once the key matched
