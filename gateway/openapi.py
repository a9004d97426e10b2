"""``GET /openapi.json``: an OpenAPI 3.1 document whose schemas are generated from the pydantic models that
validate the requests and describe the responses, so it cannot drift from what the code accepts."""

from __future__ import annotations

import inspect
import re
from typing import Any

from flask import Blueprint, Flask, current_app
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from werkzeug.routing import Rule

from gateway.auth import is_protected
from gateway.extension import MailGateway
from gateway.replay import HEADER as IDEMPOTENCY_HEADER
from gateway.replay import REPLAYED_HEADER
from gateway.responses import BatchResult, Health, ProblemDetails, SendResult
from gateway.schemas import BatchRequest, MessageRequest, RawMessageRequest

blueprint = Blueprint("openapi", __name__)
REF = "#/components/schemas/{model}"
PROBLEM = "application/problem+json"

# Each status a route may answer with an error, and the problem types (urn:mail-gateway:problem:<slug>) behind it.
PROBLEMS: dict[int, tuple[str, list[str]]] = {
    400: ("Malformed JSON, or an invalid Idempotency-Key header", ["malformed-json", "invalid-idempotency-key"]),
    401: ("No API key, or not one of GATEWAY_API_KEYS", ["unauthorized"]),
    409: ("The Idempotency-Key is in flight, or was used for another request",
          ["idempotency-key-in-flight", "idempotency-key-reused"]),
    413: ("The body exceeds GATEWAY_MAX_MESSAGE_BYTES", ["request-too-large"]),
    415: ("The body is not application/json", ["unsupported-media-type"]),
    422: ("Invalid request (each field and its fix in errors), or every recipient refused",
          ["invalid-message", "recipients-refused"]),
    500: ("An unexpected failure (no traceback is ever sent)", ["internal-error", "misconfigured"]),
    502: ("The upstream refused the message permanently", ["upstream-refused"]),
    503: ("A transient failure (with Retry-After), or an unknown outcome after the data was sent (without)",
          ["delivery-deferred", "delivery-outcome-unknown", "idempotency-store-unavailable"]),
}
SEND_ERRORS = (400, 401, 409, 413, 415, 422, 500, 502, 503)
BATCH_ERRORS = (400, 401, 409, 413, 415, 422, 500, 503)


def _schemas() -> tuple[dict[tuple[type[BaseModel], str], Any], dict[str, Any]]:
    models: list[tuple[type[BaseModel], Any]] = [
        (MessageRequest, "validation"), (BatchRequest, "validation"), (RawMessageRequest, "validation"),
        (SendResult, "serialization"), (BatchResult, "serialization"), (ProblemDetails, "serialization"),
        (Health, "serialization"),
    ]
    refs, top = models_json_schema(models, ref_template=REF)
    return refs, top["$defs"]


def _json(schema: dict[str, Any], media_type: str = "application/json") -> dict[str, Any]:
    return {"content": {media_type: {"schema": schema}}}


def _problem_responses(statuses: tuple[int, ...], problem_ref: dict[str, Any]) -> dict[str, Any]:
    return {
        str(status): {
            "description": f"{PROBLEMS[status][0]}. Problem types: "
                           + ", ".join(f"`urn:mail-gateway:problem:{slug}`" for slug in PROBLEMS[status][1]),
            **_json(problem_ref, PROBLEM),
        }
        for status in statuses
    }


def _send_operation(summary: str, body_ref: dict[str, Any], status: int, result_ref: dict[str, Any],
                    errors: tuple[int, ...], problem_ref: dict[str, Any], protected: bool) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": [{
            "name": IDEMPOTENCY_HEADER, "in": "header", "required": False,
            "description": "Makes the request safe to retry for 24 hours: the same key and body replay the first "
                           f"response (marked {REPLAYED_HEADER}: true) without sending again.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[!-~]([ -~]*[!-~])?$"},
        }],
        "requestBody": {"required": True, **_json(body_ref)},
        "responses": {str(status): {"description": "Sent", **_json(result_ref)},
                      **_problem_responses(errors, problem_ref)},
    }
    if protected:
        operation["security"] = [{"bearerAuth": []}]
    return operation


def build_document(*, protected: bool) -> dict[str, Any]:
    refs, schemas = _schemas()
    problem = refs[(ProblemDetails, "serialization")]
    sent = refs[(SendResult, "serialization")]
    return {
        "openapi": "3.1.0",
        "info": {"title": "mail-gateway", "version": "1",
                 "description": "Send mail through the gateway's configured backend. Every error is an RFC 9457 "
                                "application/problem+json body."},
        "paths": {
            "/v1/messages": {"post": _send_operation(
                "Send one message", refs[(MessageRequest, "validation")], 202, sent, SEND_ERRORS, problem,
                protected)},
            "/v1/messages/batch": {"post": _send_operation(
                "Send several messages, each reported on its own", refs[(BatchRequest, "validation")], 200,
                refs[(BatchResult, "serialization")], BATCH_ERRORS, problem, protected)},
            "/v1/messages/raw": {"post": _send_operation(
                "Send a message built by the client, unchanged", refs[(RawMessageRequest, "validation")], 202,
                sent, SEND_ERRORS, problem, protected)},
            "/healthz": {"get": {"summary": "Liveness probe", "responses": {
                "200": {"description": "The process serves", **_json(refs[(Health, "serialization")])}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {
                "200": {"description": "OpenAPI 3.1", **_json({"type": "object"})}}}},
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "One of the keys in GATEWAY_API_KEYS"}},
        },
    }


_RULE_PARAMETER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
_PARAMETER_TYPES = {"int": "integer", "float": "number"}


def _fallback_operation(rule: Rule, view: Any, problem_ref: dict[str, Any], protected: bool) -> dict[str, Any]:
    """A minimal entry for a route registered by code this module does not know, so none goes undocumented."""
    doc = (inspect.getdoc(view) or rule.endpoint).splitlines()[0]
    operation: dict[str, Any] = {"summary": doc, "responses": {"200": {"description": "Success"},
                                                               "default": {"description": "An error",
                                                                           **_json(problem_ref, PROBLEM)}}}
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": {"type": _PARAMETER_TYPES.get(converter or "", "string")}}
                  for converter, name in _RULE_PARAMETER.findall(rule.rule)]
    if parameters:
        operation["parameters"] = parameters
    if "DELETE" in (rule.methods or ()):
        operation["responses"]["204"] = {"description": "Deleted"}
    if protected and is_protected(rule.rule):
        operation["security"] = [{"bearerAuth": []}]
    return operation


def document_for(app: Flask) -> dict[str, Any]:
    protected = bool(MailGateway.state(app).settings.api_keys)
    document = build_document(protected=protected)
    problem_ref = {"$ref": REF.format(model=ProblemDetails.__name__)}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = _RULE_PARAMETER.sub(r"{\2}", rule.rule)
        operations = document["paths"].setdefault(path, {})
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if method.lower() not in operations:
                view = app.view_functions[rule.endpoint]
                operations[method.lower()] = _fallback_operation(rule, view, problem_ref, protected)
    return document


@blueprint.get("/openapi.json")
def openapi_document() -> dict[str, Any]:
    # Built on first request, when every blueprint (including ones registered after start-up) is in place.
    cache = current_app.extensions.setdefault("mail_gateway_openapi", {})
    if "document" not in cache:
        cache["document"] = document_for(current_app)  # type: ignore[arg-type]
    return cache["document"]
