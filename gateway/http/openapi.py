"""``GET /openapi.json``: an OpenAPI 3.1 document of every route the app serves.

Each route describes itself (``mail_gateway.http.docs``) with the pydantic models it validates and answers with,
so the schemas cannot drift from what the code accepts. A route registered by code that did not describe itself
still gets a minimal entry, so none goes undocumented.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from flask import Blueprint, Flask, current_app
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from werkzeug.routing import Rule

from mail_gateway.extension import MailGateway
from mail_gateway.http import docs
from mail_gateway.http.auth import is_protected
from mail_gateway.http.idempotency import HEADER as IDEMPOTENCY_HEADER
from mail_gateway.http.idempotency import REPLAYED_HEADER
from mail_gateway.http.responses import ProblemDetails

blueprint = Blueprint("openapi", __name__)
REF = "#/components/schemas/{model}"
PROBLEM = "application/problem+json"
_RULE_PARAMETER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
_PARAMETER_TYPES = {"int": "integer", "float": "number"}
_IDEMPOTENCY_PARAMETER = {
    "name": IDEMPOTENCY_HEADER, "in": "header", "required": False,
    "description": "Makes the request safe to retry for 24 hours: the same key and body replay the first "
                   f"response (marked {REPLAYED_HEADER}: true) without sending again.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[!-~]([ -~]*[!-~])?$"},
}


def openapi_path(rule: str) -> str:
    """``/v1/outbox/<message_id>`` -> ``/v1/outbox/{message_id}``."""
    return _RULE_PARAMETER.sub(r"{\2}", rule)


def _json(schema: dict[str, Any], media_type: str = "application/json") -> dict[str, Any]:
    return {"content": {media_type: {"schema": schema}}}


def _served(app: Flask) -> list[tuple[Rule, str, Any]]:
    return [(rule, method, app.view_functions[rule.endpoint])
            for rule in app.url_map.iter_rules() if rule.endpoint != "static"
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]


def _models(served: list[tuple[Rule, str, Any]]) -> list[tuple[type[BaseModel], Any]]:
    models: dict[tuple[type[BaseModel], str], None] = {(ProblemDetails, "serialization"): None}
    for _, _, view in served:
        operation = docs.operation_of(view)
        if operation is None:
            continue
        if operation.body is not None:
            models[(operation.body, "validation")] = None
        for response in operation.responses.values():
            for model in response if isinstance(response, tuple) else (response,):
                if isinstance(model, type):
                    models[(model, "serialization")] = None
    return list(models)


def _parameters(rule: Rule, operation: docs.Operation | None) -> list[dict[str, Any]]:
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": {"type": _PARAMETER_TYPES.get(converter or "", "string")}}
                  for converter, name in _RULE_PARAMETER.findall(rule.rule)]
    if operation is not None and operation.query is not None:
        schema = operation.query.model_json_schema()
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
        schema = {"type": "object"} if response.endswith("json") else {"type": "string"}
        return {"description": "Success", "content": {response: {"schema": schema}}}
    return {"description": (inspect.getdoc(response) or "Success").splitlines()[0],
            **_json(refs[(response, "serialization")])}


def _operation(rule: Rule, method: str, view: Any, refs: dict[Any, Any], protected: bool) -> dict[str, Any]:
    operation = docs.operation_of(view)
    problem_ref = refs[(ProblemDetails, "serialization")]
    if operation is None:
        summary = (inspect.getdoc(view) or rule.endpoint).splitlines()[0]
        success = {"204": {"description": "Done; no body"}} if method == "DELETE" else \
            {"200": {"description": "Success"}}
        entry: dict[str, Any] = {"summary": summary, "responses": {
            **success, "default": {"description": "An error", **_json(problem_ref, PROBLEM)}}}
    else:
        entry = {"summary": operation.summary, "responses": {
            **{str(status): _success(response, refs) for status, response in operation.responses.items()},
            **_problem_responses(operation.problems, problem_ref)}}
        if operation.body is not None:
            entry["requestBody"] = {"required": True, **_json(refs[(operation.body, "validation")])}
    parameters = _parameters(rule, operation)
    if parameters:
        entry["parameters"] = parameters
    if protected and is_protected(rule.rule):
        entry["security"] = [{"bearerAuth": []}]
    return entry


def document_for(app: Flask) -> dict[str, Any]:
    protected = bool(MailGateway.state(app).settings.api_keys)
    served = _served(app)
    refs, top = models_json_schema(_models(served), ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for rule, method, view in served:
        paths.setdefault(openapi_path(rule.rule), {})[method.lower()] = _operation(rule, method, view, refs,
                                                                                    protected)
    return {
        "openapi": "3.1.0",
        "info": {"title": "mail-gateway", "version": "1",
                 "description": "Send mail through the gateway's configured backend. Every error is an RFC 9457 "
                                "application/problem+json body."},
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "One of the keys in GATEWAY_API_KEYS"}},
        },
    }


@blueprint.get("/openapi.json")
@docs.operation("This document (OpenAPI 3.1)", responses={200: "application/json"})
def openapi_document() -> dict[str, Any]:
    # Built on first request, when every blueprint (including ones registered after start-up) is in place.
    cache = current_app.extensions.setdefault("mail_gateway_openapi", {})
    if "document" not in cache:
        cache["document"] = document_for(current_app)  # type: ignore[arg-type]
    return cache["document"]
