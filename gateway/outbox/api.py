"""``/v1/outbox``: list, read, download and delete the messages a keeping backend (memory, file) holds.

The routes are built by ``outbox_blueprint`` so the outbox page can mount the same ones under its own prefix
(a browser page cannot send the API-key header that ``/v1`` may require, nor can an iframe or a download link).
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

from flask import Blueprint, Response, json, request, send_file
from pydantic import BaseModel, ValidationError

from mail_gateway.backends.kept import KeptMail
from mail_gateway.http import docs
from mail_gateway.http.body import json_body
from mail_gateway.http.message_ids import use_message_ids
from mail_gateway.http.problems import Problem
from mail_gateway.http.query import parse_query
from mail_gateway.mail.reader import MessageReader
from mail_gateway.mail.request import validation_errors
from mail_gateway.outbox import live, state, views
from mail_gateway.outbox.attachments import attachments_of, download_name
from mail_gateway.outbox.models import (
    BulkAction,
    BulkResult,
    ClearQuery,
    MessageDetail,
    OutboxPage,
    OutboxQuery,
    Owners,
    RawQuery,
    ReadMark,
)
from mail_gateway.outbox.state import current_outbox, kept_or_404

# Whatever a message holds is the sender's content: never let a browser run or sniff it in this origin.
CONTENT_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'"}
READ_ERRORS = (401, 404)


@docs.operation("List kept messages, newest first", operation_id="list_outbox_messages", tag="outbox",
                query=OutboxQuery, responses={200: OutboxPage, 304: None}, problems=(400, *READ_ERRORS, 403),
                headers={200: {"ETag": True}, 304: {"ETag": True}})
def list_messages() -> Response:
    """List kept messages, newest first; `limit`/`start` page, `query` searches, `to`/`from`/`subject` filter."""
    # A misspelt filter is refused, as is one given twice: either would list messages that do not match.
    query = parse_query(OutboxQuery)
    found_terms, view = state.terms(query.query), state.viewer(query.owner)
    outbox = current_outbox()
    # The page a poller already has costs one comparison: nothing is listed, read or parsed. Read marks change
    # no message, so their sequence counts too, as does whose mail the request sees.
    seen = f"{outbox.version()}-{outbox.keeping.sequence()}-{view.owner}?{request.query_string.decode('latin-1')}"
    etag = hashlib.sha256(seen.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    if request.if_none_match.contains(etag):
        return Response(status=304, headers={"ETag": f'"{etag}"', "Cache-Control": "no-cache"})
    to, from_, subject = query.to or None, query.from_ or None, query.subject or None
    keep = None if to is None and from_ is None and subject is None else (
        lambda s: views.matches(s, to=to, from_=from_, subject=subject))
    total, page = state.matching(outbox, view, found_terms, query.start, query.limit, keep)
    body = {"total": total, "start": query.start, "limit": query.limit,
            "messages": [views.listed(s, outbox.keeping) for s in page], "retention": state.retention(outbox)}
    return Response(json.dumps(body), mimetype="application/json",
                    headers={"ETag": f'"{etag}"', "Cache-Control": "no-cache"})


@docs.operation("Forget every kept message (a named key's: its own)", operation_id="clear_outbox", tag="outbox",
                query=ClearQuery, responses={204: None}, problems=(400, *READ_ERRORS, 403))
def clear_messages() -> tuple[str, int]:
    outbox, view = current_outbox(), state.viewer(parse_query(ClearQuery).owner)
    if view.owner is None:
        outbox.clear()
    else:
        _delete(outbox, [i for i in outbox.kept_ids() if state.visible(outbox, view, i)])
    return "", 204


@docs.operation("One kept message: headers, text, HTML, attachments, links and codes",
                operation_id="get_outbox_message", tag="outbox", responses={200: MessageDetail}, problems=READ_ERRORS)
def get_message(message_id: str) -> dict[str, Any]:
    kept = kept_or_404(message_id)
    outbox = current_outbox()
    return views.detail(kept, MessageReader(kept.data, kept.recipients), outbox.summary(message_id), outbox.keeping)


def _body(model: type[BaseModel]) -> Any:
    try:
        return model.model_validate(json_body())
    except ValidationError as exc:
        errors = validation_errors(exc)
        raise Problem(400, "Invalid request body", "Check the body's fields: "
                      f"{', '.join(dict.fromkeys(e.field for e in errors))}.", "invalid-body", errors) from exc


@docs.operation("Mark one kept message read or unread", operation_id="mark_outbox_message", tag="outbox",
                body=ReadMark, responses={204: None}, problems=(400, *READ_ERRORS, 403, 415))
def mark_message(message_id: str) -> tuple[str, int]:
    mark = _body(ReadMark)
    kept_or_404(message_id)
    if not current_outbox().keeping.mark_read(message_id, mark.read):
        kept_or_404(message_id)  # deleted since it was found: answered as gone
    return "", 204


def _delete(outbox: KeptMail, ids: list[str]) -> int:
    return sum(outbox.delete_kept(message_id) for message_id in ids)


@docs.operation("Delete, or mark read or unread, the kept messages named", operation_id="bulk_outbox_messages",
                tag="outbox", body=BulkAction, responses={200: BulkResult}, problems=(400, *READ_ERRORS, 403, 415))
def bulk() -> dict[str, int]:
    action = _body(BulkAction)
    outbox, view = current_outbox(), state.viewer()
    ids = [i for i in dict.fromkeys(action.ids) if outbox.get_kept(i) is not None and state.visible(outbox, view, i)]
    if action.action == "delete":
        return {"affected": _delete(outbox, ids)}
    return {"affected": sum(outbox.keeping.mark_read(message_id, action.action == "read") for message_id in ids)}


@docs.operation("The names of the API keys whose mail is kept (admin keys)", operation_id="list_outbox_owners",
                tag="outbox", responses={200: Owners}, problems=(*READ_ERRORS, 403))
def list_owners() -> dict[str, list[str]]:
    if state.viewer().owner is not None:
        raise Problem(403, "Admin keys only", "Only a key named in GATEWAY_ADMIN_KEYS sees whose mail is kept.",
                      "owner-not-allowed")
    return {"owners": state.owners(current_outbox())}


@docs.operation("Forget one kept message", operation_id="delete_outbox_message", tag="outbox",
                responses={204: None}, problems=(*READ_ERRORS, 403))
def delete_message(message_id: str) -> tuple[str, int]:
    kept_or_404(message_id)  # another key's message answers the same 404 as an unknown id
    if not current_outbox().delete_kept(message_id):
        kept_or_404(message_id)
    return "", 204


@docs.operation("One kept message exactly as delivered; ?download=1 saves it as <id>.eml",
                operation_id="get_outbox_message_raw", tag="outbox", query=RawQuery, responses={200: "message/rfc822"},
                problems=(400, *READ_ERRORS), headers={200: {"Content-Disposition": False}})
def raw_message(message_id: str) -> Response:
    download = parse_query(RawQuery).download  # ?download=maybe is refused, not read as no
    kept = kept_or_404(message_id)
    response = Response(kept.data, mimetype="message/rfc822")
    if download:
        response.headers["Content-Disposition"] = f'attachment; filename="{kept.id}.eml"'
    return response


@docs.operation("One attachment of a kept message, numbered from 0, as a download",
                operation_id="get_outbox_attachment", tag="outbox", responses={200: docs.ANY_FILE},
                problems=READ_ERRORS, headers={200: {"Content-Disposition": True}})
def attachment(message_id: str, index: int) -> Response:
    kept = kept_or_404(message_id)
    attachments = attachments_of(kept)
    if index >= len(attachments):
        raise Problem(404, "No such attachment", f"Message {message_id!r} has {len(attachments)} attachment(s), "
                      f"numbered from 0; there is no attachment {index}.", "no-such-attachment")
    found = attachments[index]
    return send_file(io.BytesIO(found.content), mimetype=found.content_type, as_attachment=True,
                     download_name=download_name(found))


def with_content_headers(response: Response) -> Response:
    """Every outbox answer: never sniffed as another type, and never run as a page (a kept message is anyone's)."""
    response.headers.update(CONTENT_HEADERS)
    return response


def outbox_blueprint(name: str, url_prefix: str) -> Blueprint:
    blueprint = Blueprint(name, __name__, url_prefix=url_prefix)
    blueprint.record_once(use_message_ids)
    blueprint.add_url_rule("", view_func=list_messages, methods=["GET"])
    blueprint.add_url_rule("", view_func=clear_messages, methods=["DELETE"])
    blueprint.add_url_rule("/wait", view_func=live.wait, methods=["GET"])
    blueprint.add_url_rule("/owners", view_func=list_owners, methods=["GET"])
    blueprint.add_url_rule("/bulk", view_func=bulk, methods=["POST"])
    blueprint.add_url_rule("/<message_id:message_id>", view_func=get_message, methods=["GET"])
    blueprint.add_url_rule("/<message_id:message_id>", view_func=mark_message, methods=["PATCH"])
    blueprint.add_url_rule("/<message_id:message_id>", view_func=delete_message, methods=["DELETE"])
    blueprint.add_url_rule("/<message_id>/raw", view_func=raw_message, methods=["GET"])
    blueprint.add_url_rule("/<message_id>/attachments/<int:index>", view_func=attachment, methods=["GET"])

    blueprint.after_request(with_content_headers)
    return blueprint


blueprint = outbox_blueprint("outbox_api", "/v1/outbox")
