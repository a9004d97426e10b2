"""How a route describes itself for the OpenAPI document: ``@operation(...)`` beside the route's decorator.

Each feature documents its own routes from the pydantic models it validates and answers with, so the document
(``mail_gateway.http.openapi``) is assembled from the routes the app really serves and cannot drift from them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Blueprint
from pydantic import BaseModel

from mail_gateway.http.limits import MAX_HEADER_BYTES

View = TypeVar("View", bound=Callable[..., Any])
BlueprintT = TypeVar("BlueprintT", bound=Blueprint)
Response = type[BaseModel] | tuple[type[BaseModel], ...] | str | None
ATTRIBUTE = "openapi_operation"
BROWSER_ATTRIBUTE = "openapi_for_browsers"

# Each operation's tag, in the order the document lists them; a generated client puts each tag's calls in a module.
TAGS: dict[str, str] = {
    "messages": "Send mail: one message, a batch, or a message the client built",
    "queue": "Queued delivery: look up, list, retry and cancel stored messages (GATEWAY_DELIVERY=queued)",
    "templates": "Stored templates: create, read, replace, delete, list, and render without sending",
    "suppressions": "The suppression list: addresses never sent to (hard bounces, unsubscribes, manual entries)",
    "outbox": "The messages a keeping backend (memory, file) holds",
    "health": "Liveness, readiness and metrics",
    "openapi": "This description of the API",
}

# What ``mail-gateway serve`` answers itself, before the app runs: an app embedded in another server gets that
# server's answers instead.
BY_THE_SERVER = "answered by mail-gateway serve itself (not by an app embedded in another server)"
# Each status a route may answer with an error, and the problem types (urn:mail-gateway:problem:<slug>) behind it.
PROBLEMS: dict[int, tuple[str, list[str]]] = {
    400: ("Malformed JSON, an invalid Idempotency-Key header, an invalid query parameter or outbox request body, a "
          "Host name not in GATEWAY_ALLOWED_HOSTS, or Idempotency-Key, Authorization, Content-Type or Host sent more "
          f"than once; or {BY_THE_SERVER}, a request that is not valid HTTP/1.1 (request line, header "
          "field, Content-Length or chunk)", ["malformed-json", "invalid-idempotency-key", "invalid-query",
                                              "invalid-body", "host-not-allowed", "duplicate-header",
                                              "malformed-request"]),
    401: ("No API key, or not one of GATEWAY_API_KEYS", ["unauthorized"]),
    403: ("A request that changes the outbox came from another site, a sender (envelope, From or Sender) that "
          "GATEWAY_ALLOWED_SENDERS does not allow this API key, or whose kept mail to see asked by a key not in "
          "GATEWAY_ADMIN_KEYS", ["cross-site-request", "sender-not-allowed", "owner-not-allowed"]),
    404: ("Nothing to show: no such message, template or suppression, no kept message matching a wait in time, or "
          "a backend that keeps no mail", ["no-such-message", "no-such-attachment", "no-outbox", "no-html-part",
                                           "outbox-disabled", "queued-delivery-off", "no-such-template",
                                           "no-such-suppression", "no-matching-message"]),
    408: (f"The request did not arrive whole within GATEWAY_HTTP_REQUEST_TIMEOUT, {BY_THE_SERVER}; send the "
          "whole request at once", ["request-timeout"]),
    409: ("The Idempotency-Key is in flight, or was used for another request; nothing is left to retry or cancel, "
          "or a worker is delivering the message to cancel (with Retry-After); a template's name is taken, or is a "
          "read-only file; or the chaos switch cannot be turned on here",
          ["idempotency-key-in-flight", "idempotency-key-reused", "nothing-pending", "delivery-in-flight",
           "template-exists", "template-read-only", "chaos-not-allowed"]),
    413: ("The body exceeds GATEWAY_MAX_MESSAGE_BYTES, or the message the upstream's SIZE",
          ["request-too-large", "message-too-large"]),
    415: ("The body is not application/json", ["unsupported-media-type"]),
    422: ("Invalid request (each field and its fix in errors), a template that cannot be saved or rendered "
          "(template, part, line, variable), or every recipient refused or suppressed (each one's field in errors)",
          ["invalid-message", "template-error", "recipients-refused", "recipients-suppressed"]),
    431: (f"The request line and header fields exceed {MAX_HEADER_BYTES} bytes together, {BY_THE_SERVER}; send "
          "shorter header fields", ["header-too-large"]),
    500: ("An unexpected failure (no traceback is ever sent)", ["internal-error", "misconfigured"]),
    501: (f"A Transfer-Encoding other than chunked alone, {BY_THE_SERVER}", ["unsupported-transfer-encoding"]),
    502: ("The upstream refused the message permanently, or lacks an extension it needs (SMTPUTF8, 8BITMIME)",
          ["upstream-refused", "upstream-extension-missing"]),
    503: ("A transient failure (with Retry-After), an unknown outcome after the data was sent (without), or a "
          "backend that is not ready", ["delivery-deferred", "delivery-outcome-unknown",
                                         "store-unavailable", "not-ready"]),
}
# A Host not allowed, or Host or Authorization sent twice, is refused before any route runs.
EVERY_ROUTE_ERRORS = (400,)
# A request late, with too large a header or an unsupported Transfer-Encoding is refused before the app sees it.
SERVER_ERRORS = (408, 431, 501)
# The response headers a client acts on, each with its description and schema; an operation names the ones its
# successes carry (``Operation.headers``), and these statuses carry theirs on every route.
HEADERS: dict[str, tuple[str, dict[str, Any]]] = {
    "Location": ("The path of what was created", {"type": "string"}),
    "ETag": ("The listing's version: sent back as If-None-Match, it gets 304 while nothing changed",
             {"type": "string"}),
    "Content-Disposition": ("attachment, with the file's name", {"type": "string"}),
    "Retry-After": ("Seconds to wait before retrying", {"type": "integer", "minimum": 0}),
    "WWW-Authenticate": ("How to authenticate: Bearer, with one of GATEWAY_API_KEYS", {"type": "string"}),
    "Idempotent-Replayed": ("true when this is the stored response to an earlier request with this "
                            "Idempotency-Key, replayed", {"type": "string", "const": "true"}),
}
# Each header maps to whether every such response carries it.
STATUS_HEADERS: dict[int, dict[str, bool]] = {401: {"WWW-Authenticate": True}, 409: {"Retry-After": False},
                                              503: {"Retry-After": False}}
ANY_FILE = "*/*"  # a file served with its own media type
SEND_ERRORS = (400, 401, 403, 409, 413, 415, 422, 500, 502, 503)
BATCH_ERRORS = (400, 401, 409, 413, 415, 422, 500, 503)


@dataclass(frozen=True)
class Operation:
    """One route's entry. ``responses`` maps each success status to a pydantic model (a JSON body), a tuple of
    models (a body that is any one of them, e.g. by delivery mode), a media type string (another body, e.g.
    ``message/rfc822``) or None (no body). ``operation_id`` (a snake_case verb, unique in the app) and ``tag``
    (one of ``TAGS``) are what generated clients name the call and its module after."""

    summary: str
    operation_id: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    responses: Mapping[int, Response] = field(default_factory=dict)
    problems: tuple[int, ...] = ()
    idempotent: bool = False
    headers: Mapping[int, Mapping[str, bool]] = field(default_factory=dict)


def operation(summary: str, *, operation_id: str, tag: str, body: type[BaseModel] | None = None,
              query: type[BaseModel] | None = None, responses: Mapping[int, Response], problems: tuple[int, ...] = (),
              idempotent: bool = False, headers: Mapping[int, Mapping[str, bool]] | None = None
              ) -> Callable[[View], View]:
    """``headers`` names, for a success status, the ``HEADERS`` it carries, each mapped to whether it always does."""
    def describe(view: View) -> View:
        setattr(view, ATTRIBUTE, Operation(summary, operation_id, tag, body, query, dict(responses), problems,
                                           idempotent, dict(headers or {})))
        return view

    return describe


def response_headers(operation: Operation, status: int) -> dict[str, Any]:
    """The OpenAPI header objects of one of ``operation``'s responses."""
    named = {**STATUS_HEADERS.get(status, {}), **operation.headers.get(status, {})}
    if operation.idempotent:
        named["Idempotent-Replayed"] = False
    return {name: {"description": HEADERS[name][0], "required": always, "schema": HEADERS[name][1]}
            for name, always in named.items()}


def operation_of(view: Callable[..., Any]) -> Operation | None:
    return getattr(view, ATTRIBUTE, None)


def for_browsers(blueprint: BlueprintT) -> BlueprintT:
    """Keep ``blueprint``'s routes (pages, forms, static files, a page's own data routes) out of the document:
    they serve a browser, not an API client, and a generated client has nothing to do with them."""
    setattr(blueprint, BROWSER_ATTRIBUTE, True)
    return blueprint


def is_for_browsers(blueprint: Blueprint | None) -> bool:
    return bool(getattr(blueprint, BROWSER_ATTRIBUTE, False))
