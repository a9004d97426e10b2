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
    DeliveryOutcomeUnknownError,
    FieldError,
    GatewayError,
    InvalidMessageError,
    MessageTooLargeError,
    PermanentDeliveryError,
    RecipientsRefusedError,
    TransientDeliveryError,
)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:mail-gateway:problem:"
RETRY_AFTER_SECONDS = 30

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
            body["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        body.update(self.extra)
        return body

    def response(self) -> Response:
        response = Response(json.dumps(self.body()), status=self.status, mimetype=PROBLEM_JSON)
        response.headers.update(self.headers)
        return response


def _delivery_extra(exc: DeliveryError) -> dict[str, Any]:
    extra: dict[str, Any] = {"backend": exc.backend}
    if exc.message_id:
        extra["message_id"] = exc.message_id
    if exc.smtp_code is not None:
        extra["smtp_code"] = exc.smtp_code
    if exc.recipients:
        extra["recipients"] = [r.to_dict() for r in exc.recipients]
    return extra


def problem_for(exc: GatewayError) -> Problem:
    if isinstance(exc, InvalidMessageError):
        fields = ", ".join(dict.fromkeys(e.field for e in exc.errors))
        return Problem(422, "Invalid message", f"The message is invalid: check {fields}.", "invalid-message",
                       list(exc.errors))
    if isinstance(exc, MessageTooLargeError):
        return Problem(413, "Message too large", str(exc), "message-too-large", extra=_delivery_extra(exc))
    if isinstance(exc, RecipientsRefusedError):
        return Problem(422, "Recipients refused", str(exc), "recipients-refused", extra=_delivery_extra(exc))
    if isinstance(exc, DeliveryOutcomeUnknownError):
        # No Retry-After: the server may hold the message, and a blind retry could deliver it twice.
        return Problem(503, "Delivery outcome unknown", str(exc), "delivery-outcome-unknown",
                       extra=_delivery_extra(exc))
    if isinstance(exc, TransientDeliveryError):
        return Problem(503, "Delivery failed temporarily", str(exc), "delivery-deferred",
                       headers={"Retry-After": str(RETRY_AFTER_SECONDS)}, extra=_delivery_extra(exc))
    if isinstance(exc, PermanentDeliveryError):
        return Problem(502, "Upstream refused the message", str(exc), "upstream-refused",
                       extra=_delivery_extra(exc))
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
