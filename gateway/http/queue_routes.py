"""The status API of queued delivery (``/v1/messages/<id>``, list, retry, cancel) and ``/metrics``."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mail_gateway.errors import NoSuchQueuedMessageError, QueuedDeliveryOffError
from mail_gateway.http import docs
from mail_gateway.http.auth import owner_in_view
from mail_gateway.http.message_ids import use_message_ids
from mail_gateway.http.query import parse_query
from mail_gateway.queue.metrics import count_request, registry_for
from mail_gateway.queue.models import QueuedMessageList, QueuedMessageStatus, QueueListQuery
from mail_gateway.runtime import Runtime
from mail_gateway.store import actions, inbound, messages
from mail_gateway.store.database import Store
from mail_gateway.store.webhooks import iso

blueprint = Blueprint("queue", __name__)
blueprint.record_once(use_message_ids)
QUEUE_ERRORS = (400, 401, 404, 409, 500, 503)
TIMES = ("created_at", "send_at", "next_attempt_at", "at")


def _id(found: str, what: str = "queued message") -> str:
    """``found``, or the 404 of an unknown id before the store is asked, when it holds a character no id has:
    PostgreSQL cannot even compare a NUL, and the failed read answered 503 (retry later) for ever."""
    if not messages.could_be_id(found):
        raise NoSuchQueuedMessageError(f"no {what} has the id {found!r}")
    return found


def _store() -> Store:
    state = Runtime.of()
    if not state.settings.queued:
        raise QueuedDeliveryOffError("the gateway delivers directly (GATEWAY_DELIVERY=direct) and keeps no queue; "
                                     "set GATEWAY_DELIVERY=queued to keep and look up messages")
    return state.store


def _shown(item: dict[str, Any]) -> dict[str, Any]:
    """Times as RFC 3339; internal columns left out."""
    out = {k: (iso(v) if k in TIMES and v is not None else v) for k, v in item.items()
           if k not in ("due_at", "envelope_from", "via", "last_code", "last_reason")}
    for key in ("recipients", "events"):
        if key in out:
            out[key] = [_shown(sub) for sub in out[key]]
    return out


def _owner() -> str | None:
    """Whose messages this request sees and acts on: its API key's own, or every one (None) for an admin key and
    the open API. Every route about queued messages passes it to the store."""
    return owner_in_view(Runtime.of().settings.admin_key_names)


def _message(store: Store, message_id: str, owner: str | None) -> dict[str, Any]:
    found = store.read(lambda conn: messages.get_message(conn, message_id, time.time(), owner))
    if found is None:
        raise NoSuchQueuedMessageError(f"no queued message has the id {message_id!r}")
    return _shown(found)


@blueprint.get("/v1/messages/<message_id:message_id>")
@docs.operation("A queued message: its status, each recipient's and every attempt", operation_id="get_message",
                tag="queue", responses={200: QueuedMessageStatus}, problems=QUEUE_ERRORS)
def message_status(message_id: str) -> dict[str, Any]:
    return _message(_store(), _id(message_id), _owner())


@blueprint.get("/v1/inbound/<inbound_id>/raw")
@docs.operation("The raw bytes of a message an inbound route received", operation_id="get_inbound_raw",
                tag="queue", responses={200: "message/rfc822"}, problems=QUEUE_ERRORS)
def inbound_raw(inbound_id: str) -> Response:
    store, inbound_id = _store(), _id(inbound_id, "inbound message")
    # Inbound mail belongs to no API key: only an admin key (or the open API) may read it.
    data = None if _owner() is not None else store.read(lambda conn: inbound.raw(conn, inbound_id))
    if data is None:
        raise NoSuchQueuedMessageError(f"no inbound message has the id {inbound_id!r}")
    return Response(data, mimetype="message/rfc822")


@blueprint.get("/v1/messages")
@docs.operation("List queued messages, oldest first", operation_id="list_messages", tag="queue",
                query=QueueListQuery, responses={200: QueuedMessageList}, problems=QUEUE_ERRORS)
def list_messages() -> dict[str, Any]:
    store = _store()
    query = parse_query(QueueListQuery)
    owner = _owner()
    total, page = store.read(lambda conn: messages.list_messages(conn, status=query.status, limit=query.limit,
                                                                 start=query.start, now=time.time(), owner=owner,
                                                                 tag=query.tag, recipient=query.recipient))
    return {"total": total, "start": query.start, "limit": query.limit, "messages": [_shown(m) for m in page]}


@blueprint.post("/v1/messages/<message_id>/retry")
@docs.operation("Make the message's pending recipients due now", operation_id="retry_message", tag="queue",
                responses={202: QueuedMessageStatus}, problems=QUEUE_ERRORS)
def retry_message(message_id: str) -> tuple[dict[str, Any], int]:
    store, owner, message_id = _store(), _owner(), _id(message_id)
    store.write(lambda conn: actions.retry_now(conn, message_id, time.time(), owner))
    spool = Runtime.of().sender.spool
    if spool is not None:
        spool.arrived.set()
    return _message(store, message_id, owner), 202


@blueprint.delete("/v1/messages/<message_id:message_id>")
@docs.operation("Cancel the message's pending recipients", operation_id="cancel_message", tag="queue",
                responses={200: QueuedMessageStatus}, problems=QUEUE_ERRORS)
def cancel_message(message_id: str) -> dict[str, Any]:
    store, owner, message_id = _store(), _owner(), _id(message_id)
    url = Runtime.of().settings.gateway_webhook_url
    store.write(lambda conn: actions.cancel(conn, message_id, time.time(), url, owner))
    return _message(store, message_id, owner)


@blueprint.get("/metrics")
@docs.operation("Prometheus metrics (text format)", operation_id="get_metrics", tag="health",
                responses={200: "text/plain"}, problems=(401,))
def metrics() -> Response:
    registry = current_app.extensions["mail_gateway_metrics"]
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                    headers={"Content-Type": CONTENT_TYPE_LATEST})


def install_queue_api(app: Any) -> None:
    """The status routes, /metrics, and the request counters behind it."""
    state = Runtime.of(app)
    app.register_blueprint(blueprint)
    app.extensions["mail_gateway_metrics"] = registry_for(state.store if state.settings.queued else None)

    app.wsgi_app = _timed(app.wsgi_app)  # type: ignore[method-assign]

    @app.after_request
    def _counted(response: Response) -> Response:
        environ = request.environ
        rule = request.url_rule
        count_request(rule.rule if rule is not None else "unmatched", environ["REQUEST_METHOD"],
                      response.status_code, time.perf_counter() - environ.get(STARTED, time.perf_counter()))
        return response


STARTED = "mail_gateway.started"


def _timed(wsgi_app: Any) -> Any:
    """Note when each request began in its WSGI environ: cheaper than a ``before_request`` hook and ``flask.g``."""

    def timed(environ: dict[str, Any], start_response: Any) -> Any:
        environ[STARTED] = time.perf_counter()
        return wsgi_app(environ, start_response)

    return timed
