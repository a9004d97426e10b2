"""Who may use the outbox: with ``GATEWAY_API_KEYS`` set, the page and its data need a key too, and no request
that changes the outbox may come from another site.

A program sends ``Authorization: Bearer <key>`` as for ``/v1``. A browser cannot add that header to a page load,
an iframe or a download link, so it enters the key once in a form; the answer is a cookie that is ``HttpOnly``
(no script reads it) and ``SameSite=Strict`` (no other site's page sends it). The cookie holds an HMAC of the
key, never the key, so it grants the outbox page and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from flask import Flask, Response, render_template, request

from mail_gateway.http.auth import matches_any, presents_a_key, unauthorized
from mail_gateway.http.problems import Problem

COOKIE = "mail_gateway_outbox"
COOKIE_PATH = "/outbox"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
OUTBOX_BLUEPRINTS = {"outbox_api", "outbox_page", "outbox_page_data"}
GUARDED_BLUEPRINTS = {"outbox_page", "outbox_page_data"}  # /v1/outbox is guarded by the API keys already
OPEN_ENDPOINTS = {"outbox_page.login", "outbox_page.static"}
LOGIN_POLICY = ("default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                "frame-ancestors 'none'")


def session_token(key: str) -> str:
    return hmac.new(key.encode("utf-8"), b"mail-gateway outbox session", hashlib.sha256).hexdigest()


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
    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = [key.encode("utf-8") for key in keys]
        self.tokens = [session_token(key).encode("ascii") for key in keys]

    def has_session(self) -> bool:
        presented, matched = request.cookies.get(COOKIE, "").encode("utf-8", "surrogateescape"), False
        for token in self.tokens:
            matched |= hmac.compare_digest(presented, token)
        return matched

    def check(self) -> Response | None:
        """Run before every request: None lets it through; a response (the key form) or a Problem stops it."""
        if request.blueprint not in OUTBOX_BLUEPRINTS:
            return None
        if request.method not in SAFE_METHODS and from_another_site():
            raise Problem(403, "Cross-site request refused", "Requests that change the outbox must come from the "
                          "gateway's own page, not from another site.", "cross-site-request")
        if (not self.keys or request.blueprint not in GUARDED_BLUEPRINTS or request.endpoint in OPEN_ENDPOINTS
                or self.has_session() or presents_a_key(self.keys)):
            return None
        if request.endpoint == "outbox_page.page":
            return login_page(401)
        raise unauthorized("GATEWAY_API_KEYS is set: send a key as 'Authorization: Bearer <key>', or enter one "
                           "on the /outbox page.")

    def log_in(self, presented: str) -> bool:
        return bool(self.keys) and matches_any(presented, self.keys)


def install_guard(app: Flask, keys: Sequence[str]) -> OutboxGuard:
    guard = OutboxGuard(keys)
    app.extensions["mail_gateway.outbox_guard"] = guard
    # Only the outbox's own requests pay for the check.
    for blueprint in OUTBOX_BLUEPRINTS:
        app.before_request_funcs.setdefault(blueprint, []).append(guard.check)
    return guard
