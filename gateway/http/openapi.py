"""``GET /openapi.json``: an OpenAPI 3.1 document of every route the app serves, and of the webhooks the gateway
sends (``mail_gateway.http.webhook_payloads``).

Each route describes itself (``mail_gateway.http.docs``) with the pydantic models it validates and answers with,
so the schemas cannot drift from what the code accepts. A route registered by code that did not describe itself
still gets a minimal entry, so none goes undocumented.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from flask import Blueprint, Flask, current_app
from pydantic import BaseModel, RootModel
from pydantic.json_schema import models_json_schema
from werkzeug.routing import Rule

from mail_gateway.http import docs, webhook_payloads
from mail_gateway.http.auth import is_protected
from mail_gateway.http.idempotency import HEADER as IDEMPOTENCY_HEADER
from mail_gateway.http.idempotency import KEY_PATTERN, REPLAYED_HEADER
from mail_gateway.http.responses import ProblemDetails
from mail_gateway.runtime import Runtime

blueprint = Blueprint("openapi", __name__)
REF = "#/components/schemas/{model}"
PROBLEM = "application/problem+json"
_RULE_PARAMETER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
# Werkzeug's int and float converters match no sign: no route serves a negative number.
_PARAMETER_TYPES = {"int": {"type": "integer", "minimum": 0}, "float": {"type": "number", "minimum": 0}}
BINARY = {"application/octet-stream", "message/rfc822", docs.ANY_FILE}  # bodies a client reads as bytes
_IDEMPOTENCY_PARAMETER = {
    "name": IDEMPOTENCY_HEADER, "in": "header", "required": False,
    "description": "Makes the request safe to retry for 24 hours: the same key and body replay the first "
                   f"response (marked {REPLAYED_HEADER}: true) without sending again. Send it once: twice, or a "
                   "comma outside a quoted string, is 400 duplicate-header.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN},
}


def openapi_path(rule: str) -> str:
    """``/v1/outbox/<message_id>`` -> ``/v1/outbox/{message_id}``."""
    return _RULE_PARAMETER.sub(r"{\2}", rule)


def _json(schema: dict[str, Any], media_type: str = "application/json") -> dict[str, Any]:
    return {"content": {media_type: {"schema": schema}}}


def _api_rules(app: Flask) -> list[Rule]:
    """Every rule of the API: not the app's static files, nor the routes of blueprints made for a browser."""
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint != "static"
            and not docs.is_for_browsers(app.blueprints.get(rule.endpoint.rpartition(".")[0]))]


def _served(app: Flask) -> list[tuple[Rule, str, Any]]:
    return [(rule, method, app.view_functions[rule.endpoint]) for rule in _api_rules(app)
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]


def _models(served: list[tuple[Rule, str, Any]]) -> list[tuple[type[BaseModel], Any]]:
    models: dict[tuple[type[BaseModel], str], None] = {(ProblemDetails, "serialization"): None}
    models.update(dict.fromkeys((model, "validation") for model in webhook_payloads.MODELS))  # what a receiver reads
    for _, _, view in served:
        operation = docs.operation_of(view)
        if operation is None:
            continue
        if operation.body is not None:
            models[(operation.body, "validation")] = None
        if operation.query is not None:  # for the named schemas its parameters refer to
            models[(operation.query, "validation")] = None
        for response in operation.responses.values():
            for model in response if isinstance(response, tuple) else (response,):
                if isinstance(model, type):
                    models[(model, "serialization")] = None
    return list(models)


def _schemas(served: list[tuple[Rule, str, Any]]) -> tuple[dict[Any, Any], dict[str, Any]]:
    """Each model's reference, and the named schemas. A query model's fields become parameters: its own schema
    is left out, the ones its fields refer to stay."""
    refs, top = models_json_schema(_models(served), ref_template=REF)
    schemas = top.get("$defs", {})
    queries = {operation.query for _, _, view in served if (operation := docs.operation_of(view)) is not None}
    for query in queries - {None}:
        schemas.pop(refs[(query, "validation")]["$ref"].rpartition("/")[2], None)
    return refs, schemas


def _parameters(rule: Rule, operation: docs.Operation | None) -> list[dict[str, Any]]:
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": dict(_PARAMETER_TYPES.get(converter or "", {"type": "string"}))}
                  for converter, name in _RULE_PARAMETER.findall(rule.rule)]
    if operation is not None and operation.query is not None:
        schema = operation.query.model_json_schema(ref_template=REF)
        for name, field in operation.query.model_fields.items():
            key = field.alias or name
            parameters.append({"name": key, "in": "query", "required": field.is_required(),
                               "description": field.description or "", "schema": schema["properties"][key]})
    if operation is not None and operation.idempotent:
        parameters.append(_IDEMPOTENCY_PARAMETER)
    return parameters


def _problem_responses(statuses: tuple[int, ...], problem_ref: dict[str, Any]) -> dict[str, Any]:
    return {
        str(status): {
            "description": f"{docs.PROBLEMS[status][0]}. Problem types: "
                           + ", ".join(f"`urn:mail-gateway:problem:{slug}`" for slug in docs.PROBLEMS[status][1]),
            **_json(problem_ref, PROBLEM),
        }
        for status in statuses
    }


def _success(response: docs.Response, refs: dict[Any, Any]) -> dict[str, Any]:
    if isinstance(response, tuple):
        described = " ".join((inspect.getdoc(model) or "").replace("\n", " ") for model in response)
        return {"description": described, **_json({"anyOf": [refs[(model, "serialization")] for model in response]})}
    if response is None:
        return {"description": "Done; no body"}
    if isinstance(response, str):
        schema = {"type": "string", "format": "binary"} if response in BINARY else {"type": "string"}
        # Any type: listed as octet-stream first too, which generators read as bytes (none takes */* alone).
        types = ("application/octet-stream", response) if response == docs.ANY_FILE else (response,)
        return {"description": "Success", "content": {media: {"schema": schema} for media in types}}
    return {"description": (inspect.getdoc(response) or "Success").splitlines()[0],
            **_json(refs[(response, "serialization")])}


def _operation(rule: Rule, method: str, view: Any, refs: dict[Any, Any], protected: bool) -> dict[str, Any]:
    operation = docs.operation_of(view)
    problem_ref = refs[(ProblemDetails, "serialization")]
    if operation is None:
        summary = (inspect.getdoc(view) or rule.endpoint).splitlines()[0]
        success = {"204": {"description": "Done; no body"}} if method == "DELETE" else \
            {"200": {"description": "Success"}}
        blueprint, _, name = rule.endpoint.rpartition(".")
        entry: dict[str, Any] = {
            "summary": summary, "operationId": _identifier(f"{method}_{name}"), "tags": [blueprint or "default"],
            "responses": {**success, **_problem_responses(docs.EVERY_ROUTE_ERRORS + docs.SERVER_ERRORS, problem_ref),
                          "default": {"description": "An error", **_json(problem_ref, PROBLEM)}}}
    else:
        responses = {str(status): _success(response, refs) for status, response in operation.responses.items()}
        entry = {"summary": operation.summary, "operationId": operation.operation_id, "tags": [operation.tag],
                 "responses": {**responses, **_problem_responses(
                     tuple(sorted({*operation.problems, *docs.EVERY_ROUTE_ERRORS, *docs.SERVER_ERRORS})),
                     problem_ref)}}
        for status, response in entry["responses"].items():
            if headers := docs.response_headers(operation, int(status)):
                response["headers"] = headers
        if operation.body is not None:
            entry["requestBody"] = {"required": True, **_json(refs[(operation.body, "validation")])}
    parameters = _parameters(rule, operation)
    if parameters:
        entry["parameters"] = parameters
    if protected and is_protected(rule.rule):
        entry["security"] = [{"bearerAuth": []}]
    return entry


def _identifier(text: str) -> str:
    return re.sub(r"\W+", "_", text).strip("_").lower() or "operation"


def _unique_ids(operations: list[dict[str, Any]]) -> None:
    """An operationId names one call of a generated client: a view served at two paths gets a numbered second."""
    seen: set[str] = set()
    for entry in operations:
        base, number = entry["operationId"], 1
        while entry["operationId"] in seen:
            number += 1
            entry["operationId"] = f"{base}_{number}"
        seen.add(entry["operationId"])


def document_for(app: Flask) -> dict[str, Any]:
    protected = bool(Runtime.of(app).settings.api_keys)
    served = _served(app)
    refs, schemas = _schemas(served)
    paths: dict[str, dict[str, Any]] = {}
    for rule, method, view in served:
        paths.setdefault(openapi_path(rule.rule), {})[method.lower()] = _operation(rule, method, view, refs,
                                                                                    protected)
    operations = [entry for path in paths.values() for entry in path.values()]
    _unique_ids(operations)
    used = {tag for entry in operations for tag in entry["tags"]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "mail-gateway", "version": "1",
                 "description": "Send mail through the gateway's configured backend. Every error is an RFC 9457 "
                                "application/problem+json body."},
        "tags": [{"name": name, "description": text} for name, text in docs.TAGS.items() if name in used]
        + [{"name": name} for name in sorted(used - set(docs.TAGS))],
        "paths": paths,
        "webhooks": webhook_payloads.webhooks(refs),
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "One of the keys in GATEWAY_API_KEYS"}},
        },
    }


class OpenAPIDocument(RootModel[dict[str, Any]]):
    """This document: OpenAPI 3.1, as JSON."""


@blueprint.get("/openapi.json")
@docs.operation("This document (OpenAPI 3.1)", operation_id="get_openapi_document", tag="openapi",
                responses={200: OpenAPIDocument})
def openapi_document() -> dict[str, Any]:
    # Built on first request, when every blueprint (including ones registered after start-up) is in place.
    cache = current_app.extensions.setdefault("mail_gateway_openapi", {})
    if "document" not in cache:
        cache["document"] = document_for(current_app)  # type: ignore[arg-type]
    return cache["document"]
