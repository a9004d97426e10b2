"""Who may use the outbox: with ``GATEWAY_API_KEYS`` set, the page and its data need a key too, no request
that changes the outbox may come from another site, and another site's page may link to it but load nothing of it.

A program sends ``Authorization: Bearer <key>`` as for ``/v1``. A browser cannot add that header to a page load,
an iframe or a download link, so it enters the key once in a form; the answer is a cookie that is ``HttpOnly``
(no script reads it) and ``SameSite=Strict`` (no other site's page sends it). The cookie holds when it was
issued and an HMAC of that time and the key under a server-side secret, never the key, so it grants the outbox
page and nothing else; it lasts GATEWAY_OUTBOX_SESSION_LIFETIME, and a new secret (a restart, or another
GATEWAY_OUTBOX_SESSION_SECRET) or the key's removal from GATEWAY_API_KEYS revokes it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from flask import Flask, Response, g, render_template, request

from mail_gateway.http.auth import matches_any, presents_a_key, unauthorized
from mail_gateway.http.problems import Problem

if TYPE_CHECKING:
    from mail_gateway.settings import GatewaySettings

COOKIE = "mail_gateway_outbox"
COOKIE_PATH = "/outbox"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
OUTBOX_BLUEPRINTS = {"outbox_api", "outbox_page", "outbox_page_data", "outbox_tools_api", "outbox_tools_page",
                     "outbox_page_live"}
# /v1/outbox is guarded by the API keys already
GUARDED_BLUEPRINTS = {"outbox_page", "outbox_page_data", "outbox_tools_page", "outbox_page_live"}
OPEN_ENDPOINTS = {"outbox_page.login", "outbox_page.static"}
LOGIN_POLICY = ("default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                "frame-ancestors 'none'")
# Seconds a cookie's issue time may be ahead of this host's clock: hosts sharing a secret disagree a little.
CLOCK_SKEW = 60
_ISSUED = re.compile(r"[0-9]{1,12}")


def _signing_key(secret: bytes, key: bytes) -> bytes:
    """One signing key per API key, so a cookie names no key and still dies with its own."""
    return hmac.new(secret, b"mail-gateway outbox session\0" + key, hashlib.sha256).digest()


def _signature(signing_key: bytes, issued: str) -> bytes:
    return hmac.new(signing_key, issued.encode("ascii"), hashlib.sha256).hexdigest().encode("ascii")


def from_another_site() -> bool:
    """What the browser says about where the request comes from: ``Sec-Fetch-Site``, else ``Origin``."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    return origin is not None and origin.rstrip("/").lower() != request.host_url.rstrip("/").lower()


def login_page(status: int, wrong: bool = False) -> Response:
    html = render_template("outbox_login.html", wrong=wrong)
    return Response(html, status=status, mimetype="text/html",
                    headers={"Content-Security-Policy": LOGIN_POLICY, "X-Content-Type-Options": "nosniff",
                             "Cache-Control": "no-store"})


class OutboxGuard:
    def __init__(self, keys: Sequence[str], secret: bytes, lifetime: float,
                 names: Mapping[str, str | None] | None = None) -> None:
        self.keys = [key.encode("utf-8") for key in keys]
        self.names = [(names or {}).get(key) for key in keys]  # each key's name (name:key), for the per-key outbox
        self.secret = secret
        self.signing_keys = [_signing_key(secret, key) for key in self.keys]
        self.lifetime = lifetime
        self.clock: Callable[[], float] = time.time

    def has_session(self) -> bool:
        return self.session_key() is not None

    def session_key(self) -> int | None:
        """Which key (its index) signed the request's valid cookie, or None."""
        issued, _, signature = request.cookies.get(COOKIE, "").partition(".")
        if not _ISSUED.fullmatch(issued) or not -CLOCK_SKEW <= self.clock() - int(issued) <= self.lifetime:
            return None
        presented, matched = signature.encode("utf-8", "surrogateescape"), None
        for index, signing_key in enumerate(self.signing_keys):  # no early exit: the time does not say which
            if hmac.compare_digest(presented, _signature(signing_key, issued)):
                matched = index
        return matched

    def _identify(self) -> bool:
        """Whether the request holds a valid cookie or key; it then acts as that key (``g.api_key_name``), as
        ``/v1`` requests do, so the page shows that key's own mail."""
        index = self.session_key()
        if index is None:
            presented = request.headers.get("Authorization", "").partition(" ")[2].strip().encode("utf-8",
                                                                                                 "surrogateescape")
            if not presents_a_key(self.keys):
                return False
            index = next(i for i, key in enumerate(self.keys) if hmac.compare_digest(presented, key))
        g.api_key_name = self.names[index]
        g.client_id = hashlib.sha256(self.keys[index]).hexdigest()[:32]
        return True

    def check(self) -> Response | None:
        """Run before every request: None lets it through; a response (the key form) or a Problem stops it."""
        if request.blueprint not in OUTBOX_BLUEPRINTS:
            return None
        if from_another_site():
            if request.method not in SAFE_METHODS:
                raise Problem(403, "Cross-site request refused", "Requests that change the outbox must come from "
                              "the gateway's own page, not from another site.", "cross-site-request")
            # A page may link to the outbox; loading its parts (an <img> of an attachment shows its size, a load
            # that fails says which messages exist, an event stream holds a server thread) is the page's own.
            # <object>, <embed>, <iframe> and <frame> load as navigations do, inside the other page, which can tell
            # a load that failed (a fallback; a frame left about:blank by a download) from one that did not: only a
            # navigation of the whole window (a browser too old to say sends no Sec-Fetch-Dest) is a link followed.
            if (request.headers.get("Sec-Fetch-Mode", "navigate") != "navigate"
                    or request.headers.get("Sec-Fetch-Dest", "document") != "document"):
                raise Problem(403, "Cross-site request refused", "Another site's page may link to the outbox but "
                              "not load its data; open the outbox itself.", "cross-site-request")
        if (not self.keys or request.blueprint not in GUARDED_BLUEPRINTS or request.endpoint in OPEN_ENDPOINTS
                or self._identify()):
            return None
        if request.endpoint == "outbox_page.page":
            return login_page(401)
        raise unauthorized("GATEWAY_API_KEYS is set: send a key as 'Authorization: Bearer <key>', or enter one "
                           "on the /outbox page.")

    def log_in(self, presented: str) -> str | None:
        """The cookie's value for a key entered in the form, or None for a wrong one: the issue time and its
        signature with the key."""
        if not self.keys or not matches_any(presented, self.keys):
            return None
        issued = str(int(self.clock()))
        signing_key = _signing_key(self.secret, presented.encode("utf-8", "surrogateescape"))
        return f"{issued}.{_signature(signing_key, issued).decode('ascii')}"


def install_guard(app: Flask, settings: GatewaySettings) -> OutboxGuard:
    guard = OutboxGuard(settings.api_keys, settings.outbox_session_secret, settings.gateway_outbox_session_lifetime,
                        settings.api_key_names)
    app.extensions["mail_gateway.outbox_guard"] = guard
    # Only the outbox's own requests pay for the check.
    for blueprint in OUTBOX_BLUEPRINTS:
        app.before_request_funcs.setdefault(blueprint, []).append(guard.check)
    return guard
