"""``/outbox``: a browser page listing the kept mail, for development and tests (off in production unless
``GATEWAY_OUTBOX_ENABLED=true``).

The page and its data routes need an API key when ``GATEWAY_API_KEYS`` is set (``guard``: a browser enters it
once and keeps a cookie); without keys they are open, a developer's tool on by default only in development and
tests. A message is the sender's content, so its HTML is served from its own route with a Content-Security-Policy
that forbids scripts and remote loads, and the page shows it in an iframe sandboxed without ``allow-scripts`` or
``allow-same-origin``.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Sequence
from urllib.parse import unquote

from flask import Blueprint, Flask, Response, current_app, redirect, render_template, request, url_for

from mail_gateway.backends.kept import kept_mail_of
from mail_gateway.http import docs
from mail_gateway.http.problems import Problem
from mail_gateway.mail.mime_tree import FoundAttachment
from mail_gateway.mail.reader import MessageReader
from mail_gateway.outbox import api, live, state
from mail_gateway.outbox.api import kept_or_404, outbox_blueprint
from mail_gateway.outbox.checks.links import MAX_LINKS
from mail_gateway.outbox.guard import COOKIE, COOKIE_PATH, install_guard, login_page
from mail_gateway.outbox.tools import install_tools
from mail_gateway.runtime import Runtime

PAGE_POLICY = ("default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
               "form-action 'none'; frame-ancestors 'none'")
# The message's HTML: inline styles and embedded images only. No script, no remote image, font or stylesheet
# (which would tell the sender the mail was opened), and `sandbox` gives it an opaque origin even when the
# URL is opened directly instead of through the page's iframe.
MESSAGE_HTML_POLICY = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data: cid:; " \
                      "frame-ancestors 'self'"
# `?remote=1`, asked for by the page's "allow" button for one message: its remote images, stylesheets and fonts
# load too (still no script). Plain http is allowed beside https because a development server serves a
# template's images that way.
REMOTE_HTML_POLICY = "sandbox; default-src 'none'; style-src 'unsafe-inline' http: https:; " \
                     "img-src data: cid: http: https:; font-src http: https:; frame-ancestors 'self'"

_CID_REFERENCE = re.compile(r"cid:([^\s\"'<>()]+)", re.IGNORECASE)
# What the inlined images may add to one view beyond each image twice over: room for a small image used many times
# (a spacer, an icon per row). The sender writes the references, and one reference costs it a few bytes where its
# image costs the view all of its own, so without a bound a megabyte's image named ten thousand times was 13 GB.
INLINE_ALLOWANCE = 1024 * 1024


def inline_cid_images(html: str, attachments: Sequence[FoundAttachment]) -> str:
    """Replace ``cid:`` references to the message's own images with ``data:`` URIs, the one image source
    the message's policy allows, so embedded logos show without opening any remote load. The images inlined
    total at most twice their own size plus ``INLINE_ALLOWANCE``; references past that stay ``cid:`` (an image
    the frame does not load)."""
    uris = {a.content_id: f"data:{a.content_type};base64,{base64.b64encode(a.content).decode('ascii')}"
            for a in attachments if a.content_id and a.content_type.startswith("image/")}
    left = 2 * sum(len(uri) for uri in uris.values()) + INLINE_ALLOWANCE

    def data_uri(match: re.Match[str]) -> str:
        nonlocal left
        uri = uris.get(unquote(match.group(1)))
        if uri is None or len(uri) > left:
            return match.group(0)
        left -= len(uri)
        return uri

    return _CID_REFERENCE.sub(data_uri, html) if uris else html


# The page, its static files and data routes, and the 404 in their place serve a browser: none is in the API's
# OpenAPI document (the data routes are /v1/outbox's, documented there).
blueprint = docs.for_browsers(Blueprint("outbox_page", __name__, template_folder="templates", static_folder="static",
                                        static_url_path="/outbox/static"))
data_blueprint = docs.for_browsers(outbox_blueprint("outbox_page_data", "/outbox/messages"))
disabled_blueprint = docs.for_browsers(Blueprint("outbox_page_disabled", __name__))


@blueprint.get("/outbox")
def page() -> Response:
    """The developer inbox page (HTML): a shell its scripts fill from the data routes, which apply the key's
    own inbox, so the page itself lists nothing."""
    backend = Runtime.of().backend
    outbox = kept_mail_of(backend)
    selected_id = request.args.get("id")
    # Another key's message is as gone here as its data route answers (404): the page says no more.
    gone = outbox is not None and bool(selected_id) and (outbox.get_kept(selected_id) is None
                                                          or not state.visible(outbox, state.viewer(), selected_id))
    html = render_template("outbox.html", backend=backend.name, keeps=outbox is not None, gone=gone,
                           production=Runtime.of().settings.gateway_env == "production", links_checked=MAX_LINKS)
    return Response(html, mimetype="text/html", headers={"Content-Security-Policy": PAGE_POLICY,
                                                        "X-Content-Type-Options": "nosniff",
                                                        "Cache-Control": "no-cache"})


@blueprint.get("/outbox/messages/<message_id>/html")
def message_html(message_id: str) -> Response:
    """A kept message's HTML part, for the sandboxed frame of the outbox page; ``?remote=1`` lets its remote
    images and stylesheets load."""
    kept = kept_or_404(message_id)
    reader = MessageReader(kept.data)
    if reader.html is None:
        raise Problem(404, "No HTML part", f"Message {message_id!r} has no HTML part.", "no-html-part")
    html = inline_cid_images(reader.html, reader.attachments)
    policy = REMOTE_HTML_POLICY if request.args.get("remote") == "1" else MESSAGE_HTML_POLICY
    return Response(html, mimetype="text/html", headers={"Content-Security-Policy": policy,
                                                        "X-Content-Type-Options": "nosniff",
                                                        "Referrer-Policy": "no-referrer"})


@blueprint.post("/outbox/login")
def login() -> Response:
    """Exchange an API key (form field ``key``) for the outbox page's cookie (HttpOnly, SameSite=Strict)."""
    guard = current_app.extensions["mail_gateway.outbox_guard"]
    session = guard.log_in(request.form.get("key", ""))
    if session is None:
        return login_page(401, wrong=True)
    response = redirect(url_for("outbox_page.page"), code=303)
    response.set_cookie(COOKIE, session, max_age=math.ceil(guard.lifetime), path=COOKIE_PATH, httponly=True,
                        samesite="Strict", secure=request.is_secure)
    return response


@disabled_blueprint.route("/outbox", defaults={"rest": ""}, methods=["GET", "DELETE"])
@disabled_blueprint.route("/outbox/<path:rest>", methods=["GET", "DELETE"])
def disabled(rest: str) -> Response:
    """The outbox page when it is turned off: a 404 saying how to turn it on."""
    raise Problem(404, "Outbox page disabled", "The outbox page is off in production; set "
                  "GATEWAY_OUTBOX_ENABLED=true to turn it on (it has no authentication of its own).",
                  "outbox-disabled")


def install_outbox(app: Flask) -> None:
    """Mount ``/v1/outbox``, and the page with its data routes when the settings enable them (else a 404
    that says why)."""
    app.register_blueprint(api.blueprint)
    settings = Runtime.of(app).settings
    install_guard(app, settings)
    install_tools(app, settings.outbox_enabled)  # checks, release, chaos: before the disabled page's catch-all
    if settings.outbox_enabled:
        app.register_blueprint(blueprint)
        app.register_blueprint(data_blueprint)
        app.register_blueprint(live.live_blueprint)  # /outbox/events
    else:
        app.register_blueprint(disabled_blueprint)
