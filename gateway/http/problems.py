"""RFC 9457 problem details: the one place where errors become HTTP status codes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

from mail_gateway.errors import (
    ConfigurationError,
    DeliveryError,
    DeliveryInFlightError,
    DeliveryOutcomeUnknownError,
    ExtensionMissingError,
    FieldError,
    GatewayError,
    InvalidMessageError,
    MessageRefusedError,
    MessageTooLargeError,
    NoSuchQueuedMessageError,
    NoSuchTemplateError,
    NothingPendingError,
    PermanentDeliveryError,
    QueuedDeliveryOffError,
    RecipientsRefusedError,
    RecipientsSuppressedError,
    SenderNotAllowedError,
    StoreUnavailableError,
    StoreValueError,
    TemplateConflictError,
    TemplateError,
    TransientDeliveryError,
)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:mail-gateway:problem:"
RETRY_AFTER_SECONDS = 30
# Each invalid field is listed up to this many; the rest are counted (errors_omitted). A request of 20,000 bad
# headers answered with each of them made a 3.8 MB answer: the client has the first hundred to fix, then more.
ERRORS_LISTED = 100
FIELDS_NAMED = 10  # in the detail

log = logging.getLogger("mail_gateway.http")


@dataclass
class Problem(Exception):
    """An error response. Raise it from a view, or build one with ``problem_for``."""

    status: int
    title: str
    detail: str
    slug: str = "about:blank"
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.slug if self.slug == "about:blank" else TYPE_PREFIX + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = [{"field": e.field, "message": e.message} for e in self.errors[:ERRORS_LISTED]]
            if len(self.errors) > ERRORS_LISTED:
                body["errors_omitted"] = len(self.errors) - ERRORS_LISTED
        body.update(self.extra)
        return body

    def response(self) -> Response:
        response = Response(json.dumps(self.body()), status=self.status, mimetype=PROBLEM_JSON)
        response.headers.update(self.headers)
        return response


# What a client is told for each kind of failure: never the upstream's host, port or login, which stay in
# the delivery log line; the upstream's SMTP code and text are added where it answered.
_GENERIC_DETAIL = {
    MessageTooLargeError: "The message is larger than the backend accepts; it was not sent.",
    RecipientsRefusedError: "The upstream permanently refused every recipient; see recipients.",
    DeliveryOutcomeUnknownError: "The connection to the upstream was lost after the whole message was sent and "
                                 "before its answer: it may have been delivered, so it was not sent again.",
    TransientDeliveryError: "The upstream could not take the message now; nothing was accepted, so a later "
                            "retry is safe.",
    PermanentDeliveryError: "The upstream refused the message; nothing was accepted.",
}


def client_detail(exc: DeliveryError) -> str:
    """The problem ``detail`` of a delivery error (also ``/readyz``'s): the cause and the upstream's reply."""
    if exc.upstream is None and exc.client_detail is None:
        return str(exc)  # a local backend's own words (a full disk, a memory bound) name no upstream
    detail = exc.client_detail or next(
        (text for kind, text in _GENERIC_DETAIL.items() if isinstance(exc, kind)), "The delivery failed.")
    if exc.smtp_code is not None and exc.smtp_text:
        detail += f" The upstream answered: {exc.smtp_code} {exc.smtp_text}"
    return detail


def _delivery_extra(exc: DeliveryError) -> dict[str, Any]:
    extra: dict[str, Any] = {"backend": exc.backend}
    if exc.message_id:
        extra["message_id"] = exc.message_id
    if exc.smtp_code is not None:
        extra["smtp_code"] = exc.smtp_code
    if exc.smtp_text:
        extra["smtp_text"] = exc.smtp_text
    if exc.recipients:
        extra["recipients"] = [r.to_dict() for r in exc.recipients]
    return extra


def _delivery_problem(exc: DeliveryError) -> Problem:
    detail, extra = client_detail(exc), _delivery_extra(exc)
    if isinstance(exc, SenderNotAllowedError):
        return Problem(403, "Sender not allowed", f"The message may not be sent as this sender: check {exc.field}.",
                       "sender-not-allowed", [FieldError(exc.field, str(exc))], extra={"backend": exc.backend})
    if isinstance(exc, MessageTooLargeError):
        return Problem(413, "Message too large", detail, "message-too-large", extra=extra)
    if isinstance(exc, RecipientsSuppressedError):  # answered as when the upstream refuses every recipient
        return Problem(422, "Recipients suppressed", str(exc), "recipients-suppressed", list(exc.errors),
                       extra=extra)
    if isinstance(exc, RecipientsRefusedError):
        return Problem(422, "Recipients refused", detail, "recipients-refused", list(exc.errors), extra=extra)
    if isinstance(exc, DeliveryOutcomeUnknownError):
        # No Retry-After: the server may hold the message, and a blind retry could deliver it twice.
        return Problem(503, "Delivery outcome unknown", detail, "delivery-outcome-unknown", extra=extra)
    if isinstance(exc, TransientDeliveryError):
        return Problem(503, "Delivery failed temporarily", detail, "delivery-deferred",
                       headers={"Retry-After": str(RETRY_AFTER_SECONDS)}, extra=extra)
    if isinstance(exc, ExtensionMissingError):
        return Problem(502, "Upstream cannot take this message", detail, "upstream-extension-missing",
                       extra={**extra, "extension": exc.extension})
    return Problem(502, "Upstream refused the message", detail, "upstream-refused", extra=extra)


def _queue_problem(exc: GatewayError) -> Problem | None:
    if isinstance(exc, StoreValueError):  # the same request fails again: "retry later" would never end
        return Problem(422, "Invalid message", "The message is invalid: check body.", "invalid-message",
                       [FieldError("body", "holds a value the store cannot keep (PostgreSQL keeps no NUL, U+0000, "
                                           "in text); remove it")])
    if isinstance(exc, StoreUnavailableError):
        return Problem(503, "Store unavailable", f"The gateway's store did not answer: {exc}. Nothing was stored or "
                       "sent; retry later.", "store-unavailable", headers={"Retry-After": "5"})
    if isinstance(exc, QueuedDeliveryOffError):
        return Problem(404, "Queued delivery is off", str(exc), "queued-delivery-off")
    if isinstance(exc, NoSuchQueuedMessageError):
        return Problem(404, "No such message", str(exc), "no-such-message")
    if isinstance(exc, NothingPendingError):
        return Problem(409, "Nothing pending", str(exc), "nothing-pending")
    if isinstance(exc, DeliveryInFlightError):
        return Problem(409, "Delivery in flight", str(exc), "delivery-in-flight", headers={"Retry-After": "1"})
    return None


def _template_problem(exc: GatewayError) -> Problem | None:
    if isinstance(exc, TemplateError):
        where = {key: getattr(exc, key) for key in ("template", "part", "line", "variable")
                 if getattr(exc, key) is not None}
        return Problem(422, "Template cannot be used", str(exc), "template-error", list(exc.errors), extra=where)
    if isinstance(exc, NoSuchTemplateError):
        return Problem(404, "No such template", str(exc), "no-such-template")
    if isinstance(exc, TemplateConflictError):
        return Problem(409, "Template exists" if exc.reason == "exists" else "Template is read-only", str(exc),
                       f"template-{exc.reason}", [FieldError("name", str(exc))])
    return None


def problem_for(exc: GatewayError) -> Problem:
    found = _queue_problem(exc) or _template_problem(exc)
    if found is not None:
        return found
    if isinstance(exc, InvalidMessageError | MessageRefusedError):  # unusable as it is, whichever step found it
        fields = list(dict.fromkeys(e.field for e in exc.errors))
        named = ", ".join(fields[:FIELDS_NAMED]) + (f" and {len(fields) - FIELDS_NAMED} more fields"
                                                    if len(fields) > FIELDS_NAMED else "")
        return Problem(422, "Invalid message", f"The message is invalid: check {named}.", "invalid-message",
                       list(exc.errors))
    if isinstance(exc, DeliveryError):
        return _delivery_problem(exc)
    if isinstance(exc, ConfigurationError):
        return Problem(500, "Gateway misconfigured", "The gateway's configuration cannot serve this request.",
                       "misconfigured")
    return Problem(500, "Internal error", "The gateway failed unexpectedly; the error has been logged.",
                   "internal-error")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(problem: Problem) -> Response:
        return problem.response()

    @app.errorhandler(GatewayError)
    def _gateway_error(exc: GatewayError) -> Response:
        if isinstance(exc, ConfigurationError):
            log.error("configuration error while serving a request: %s", exc)
        return problem_for(exc).response()

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        problem = Problem(status, exc.name, exc.description or exc.name)
        if exc.response is None and status == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
            problem.headers["Allow"] = ", ".join(exc.valid_methods)
        return problem.response()

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")  # the traceback goes to the log, never to the client
        return problem_for(GatewayError()).response()
