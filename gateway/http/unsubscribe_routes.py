"""One-click unsubscribe (RFC 8058): ``POST /u/{token}`` suppresses the recipient the token names; ``GET`` only
shows a page with a button that posts the same form.

The routes are outside ``/v1``: a mail client or the person's browser calls them, with no API key or cookie, and
the signed token is the only credential. A GET never changes anything, as mail scanners follow links.
"""

from __future__ import annotations

from flask import Blueprint, Response, request
from markupsafe import escape
from werkzeug.exceptions import RequestEntityTooLarge

from mail_gateway.errors import FieldError
from mail_gateway.http import docs
from mail_gateway.http.problems import Problem
from mail_gateway.mail.unsubscribe import ONE_CLICK, PATH, TokenSigner
from mail_gateway.runtime import Runtime
from mail_gateway.suppression.service import unsubscribe as unsubscribe_recipient

# For mail clients and browsers, not API clients: kept out of the OpenAPI document.
blueprint = docs.for_browsers(Blueprint("unsubscribe", __name__))
_FIELD, _VALUE = ONE_CLICK.split("=")
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem">
<h1>{title}</h1><p>{text}</p>{form}</body></html>
"""
_FORM = """<form method="post" action="{action}"><input type="hidden" name="{field}" value="{value}">
<button type="submit">Unsubscribe</button></form>"""
_INVALID = "This unsubscribe link is not valid. Use the link of a message you received, unchanged."
# RFC 8058's body is 26 bytes; a browser's multipart form of the button, a few hundred. Anyone a message reached
# may post to its link, and a body up to GATEWAY_MAX_MESSAGE_BYTES of fields held a thread for seconds.
MAX_FORM_BYTES = 4096


def _page(title: str, text: str, status: int, form: str = "") -> Response:
    html = _PAGE.format(title=escape(title), text=escape(text), form=form)
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"  # the page names the address
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is the link's only credential
    return response


def _recipient(token: str) -> str | None:
    signer = TokenSigner.configured(Runtime.of().settings.unsubscribe)
    return None if signer is None else signer.recipient(token)


@blueprint.get(PATH + "<token>")
def confirm(token: str) -> Response:
    recipient = _recipient(token)
    if recipient is None:
        return _page("Link not valid", _INVALID, 404)
    form = _FORM.format(action=escape(PATH + token), field=_FIELD, value=_VALUE)
    return _page("Unsubscribe", f"Stop sending email to {recipient}? Press the button to unsubscribe.", 200, form)


def _one_click_value() -> str | None:
    """The form's List-Unsubscribe value, the body read only up to ``MAX_FORM_BYTES`` (declared or chunked)."""
    request.max_content_length = MAX_FORM_BYTES
    try:
        return request.form.get(_FIELD)
    except RequestEntityTooLarge:
        raise Problem(413, "Request too large", f"A one-click unsubscribe posts the form body {ONE_CLICK} "
                                                f"(RFC 8058); this one is over {MAX_FORM_BYTES} bytes: send that "
                                                "alone", "request-too-large",
                      extra={"max_bytes": MAX_FORM_BYTES}) from None


@blueprint.post(PATH + "<token>")
def unsubscribe(token: str) -> Response:
    recipient = _recipient(token)
    if recipient is None:
        raise Problem(404, "Not Found", _INVALID, "unsubscribe-link-invalid")
    if _one_click_value() != _VALUE:
        raise Problem(400, "Bad Request", f"A one-click unsubscribe posts the form body {ONE_CLICK} "
                                          "(RFC 8058); send it", "invalid-request",
                      errors=[FieldError(_FIELD, f"must be {_VALUE}")])
    runtime = Runtime.of()
    runtime.store.write(lambda conn: unsubscribe_recipient(conn, recipient, runtime.settings.gateway_webhook_url,
                                                            via="one-click unsubscribe"))
    return _page("Unsubscribed", f"{recipient} will get no more email from this sender.", 200)
