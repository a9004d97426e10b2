"""``/v1/outbox``: list, read, download and delete the messages a keeping backend (memory, file) holds.

The routes are built by ``outbox_blueprint`` so the outbox page can mount the same ones under its own prefix
(a browser page cannot send the API-key header that ``/v1`` may require, nor can an iframe or a download link).
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

from flask import Blueprint, Response, json, request, send_file

from mail_gateway.backends.kept import KeptMail, KeptMessage, kept_mail_of
from mail_gateway.http import docs
from mail_gateway.http.problems import Problem
from mail_gateway.http.query import parse_query
from mail_gateway.mail.reader import MessageReader
from mail_gateway.outbox import views
from mail_gateway.outbox.models import MessageDetail, OutboxPage, OutboxQuery
from mail_gateway.runtime import Runtime

# Whatever a message holds is the sender's content: never let a browser run or sniff it in this origin.
CONTENT_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'"}
READ_ERRORS = (401, 404)


def current_outbox() -> KeptMail:
    backend = Runtime.of().backend
    outbox = kept_mail_of(backend)
    if outbox is None:
        raise Problem(
            404, "No outbox",
            f"The {backend.name} backend does not keep the messages it sends, so there is nothing to show here; "
            "set MAIL_BACKEND=memory, or MAIL_BACKEND=file with MAIL_FILE_PATH, to keep them "
            "(the console backend keeps a copy with MAIL_CONSOLE_KEEP=true, the default in development).",
            "no-outbox",
        )
    return outbox


def kept_or_404(message_id: str) -> KeptMessage:
    kept = current_outbox().get_kept(message_id)
    if kept is None:
        raise Problem(404, "No such message", f"No kept message has the id {message_id!r}; it may have been "
                      "deleted or, with the memory backend, dropped as the oldest beyond MAIL_MEMORY_MAX_MESSAGES.",
                      "no-such-message")
    return kept


@docs.operation("List kept messages, newest first", operation_id="list_outbox_messages", tag="outbox",
                query=OutboxQuery, responses={200: OutboxPage, 304: None}, problems=(400, *READ_ERRORS))
def list_messages() -> Response:
    """List kept messages, newest first; `limit`/`start` page, `to`/`from`/`subject` filter."""
    # A misspelt filter is refused, as is one given twice: either would list messages that do not match.
    query = parse_query(OutboxQuery)
    limit, start = query.limit, query.start
    outbox = current_outbox()
    # The page a poller already has costs one comparison: nothing is listed, read or parsed.
    etag = hashlib.sha256(f"{outbox.version()}?{request.query_string.decode('latin-1')}".encode()).hexdigest()[:32]
    if request.if_none_match.contains(etag):
        return Response(status=304, headers={"ETag": f'"{etag}"', "Cache-Control": "no-cache"})
    to, from_, subject = query.to or None, query.from_ or None, query.subject or None
    ids = outbox.kept_ids()
    if to is None and from_ is None and subject is None:  # no filter: only the page's messages are read
        total = len(ids)
        page = [s for s in map(outbox.summary, ids[start:start + limit]) if s is not None]
    else:  # filters search the summaries, each computed once per message and kept
        found = [s for s in map(outbox.summary, ids) if s is not None
                 and views.matches(s, to=to, from_=from_, subject=subject)]
        total, page = len(found), found[start:start + limit]
    body = {"total": total, "start": start, "limit": limit, "messages": [views.listed(s) for s in page]}
    return Response(json.dumps(body), mimetype="application/json",
                    headers={"ETag": f'"{etag}"', "Cache-Control": "no-cache"})


@docs.operation("Forget every kept message", operation_id="clear_outbox", tag="outbox", responses={204: None},
                problems=(*READ_ERRORS, 403))
def clear_messages() -> tuple[str, int]:
    current_outbox().clear()
    return "", 204


@docs.operation("One kept message: headers, text, HTML and attachments", operation_id="get_outbox_message",
                tag="outbox", responses={200: MessageDetail}, problems=READ_ERRORS)
def get_message(message_id: str) -> dict[str, Any]:
    kept = kept_or_404(message_id)
    return views.detail(kept, MessageReader(kept.data, kept.recipients))


@docs.operation("Forget one kept message", operation_id="delete_outbox_message", tag="outbox",
                responses={204: None}, problems=(*READ_ERRORS, 403))
def delete_message(message_id: str) -> tuple[str, int]:
    if not current_outbox().delete_kept(message_id):
        kept_or_404(message_id)  # answers the same 404 as a read would
    return "", 204


@docs.operation("One kept message exactly as delivered", operation_id="get_outbox_message_raw", tag="outbox",
                responses={200: "message/rfc822"}, problems=READ_ERRORS)
def raw_message(message_id: str) -> Response:
    kept = kept_or_404(message_id)
    return Response(kept.data, mimetype="message/rfc822")


@docs.operation("One attachment of a kept message, numbered from 0, as a download",
                operation_id="get_outbox_attachment", tag="outbox", responses={200: "application/octet-stream"},
                problems=READ_ERRORS)
def attachment(message_id: str, index: int) -> Response:
    kept = kept_or_404(message_id)
    attachments = MessageReader(kept.data).attachments
    if index >= len(attachments):
        raise Problem(404, "No such attachment", f"Message {message_id!r} has {len(attachments)} attachment(s), "
                      f"numbered from 0; there is no attachment {index}.", "no-such-attachment")
    found = attachments[index]
    return send_file(io.BytesIO(found.content), mimetype=found.content_type, as_attachment=True,
                     download_name=found.filename or f"attachment-{index}")


def outbox_blueprint(name: str, url_prefix: str) -> Blueprint:
    blueprint = Blueprint(name, __name__, url_prefix=url_prefix)
    blueprint.add_url_rule("", view_func=list_messages, methods=["GET"])
    blueprint.add_url_rule("", view_func=clear_messages, methods=["DELETE"])
    blueprint.add_url_rule("/<message_id>", view_func=get_message, methods=["GET"])
    blueprint.add_url_rule("/<message_id>", view_func=delete_message, methods=["DELETE"])
    blueprint.add_url_rule("/<message_id>/raw", view_func=raw_message, methods=["GET"])
    blueprint.add_url_rule("/<message_id>/attachments/<int:index>", view_func=attachment, methods=["GET"])

    @blueprint.after_request
    def _content_headers(response: Response) -> Response:
        response.headers.update(CONTENT_HEADERS)
        return response

    return blueprint


blueprint = outbox_blueprint("outbox_api", "/v1/outbox")
