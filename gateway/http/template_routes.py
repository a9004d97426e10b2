"""The template routes: create, read, replace, delete and list stored templates, and render one without sending.

Every API key may use them: templates are the service's (``mail_gateway.templating.library``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from flask import Blueprint
from pydantic import BaseModel, ValidationError

from mail_gateway.errors import InvalidMessageError, NoSuchTemplateError
from mail_gateway.http import docs
from mail_gateway.http.body import json_body
from mail_gateway.mail.request import validation_errors
from mail_gateway.runtime import Runtime
from mail_gateway.templating.files import NAME
from mail_gateway.templating.library import TemplateLibrary, stored_view
from mail_gateway.templating.models import (
    NewTemplate,
    RenderedTemplate,
    RenderRequest,
    TemplateDetail,
    TemplateList,
    TemplateParts,
)

blueprint = Blueprint("templates", __name__)
TEMPLATE_ERRORS = (400, 401, 404, 409, 413, 415, 422, 500, 503)
Body = TypeVar("Body", bound=BaseModel)


def _library() -> TemplateLibrary:
    library = Runtime.of().sender.templates
    assert isinstance(library, TemplateLibrary)  # the one sender factory (assembly.build_sender) gives it one
    return library


def _name(name: str) -> str:
    """``name``, or the 404 of a name no template can have, before the store is asked: PostgreSQL cannot even
    compare a NUL, and the failed read answered 503 (retry later) for ever."""
    if not NAME.fullmatch(name):
        raise NoSuchTemplateError(f"no template is named {name!r}; a name is letters, digits, '_' and '-'")
    return name


def _body(model: type[Body]) -> Body:
    try:
        return model.model_validate(json_body())
    except ValidationError as exc:
        raise InvalidMessageError(errors=validation_errors(exc)) from exc


@blueprint.get("/v1/templates")
@docs.operation("List the templates, stored and files", operation_id="list_templates", tag="templates",
                responses={200: TemplateList}, problems=(401, 500, 503))
def list_templates() -> dict[str, Any]:
    return {"templates": _library().listing()}


@blueprint.post("/v1/templates")
@docs.operation("Store a template", operation_id="create_template", tag="templates", body=NewTemplate,
                responses={201: TemplateDetail}, problems=TEMPLATE_ERRORS, headers={201: {"Location": True}})
def create_template() -> tuple[dict[str, Any], int, dict[str, str]]:
    body = _body(NewTemplate)
    made = _library().create(body.name, TemplateParts(**body.model_dump(exclude={"name"})))
    return stored_view(made, detail=True), 201, {"Location": f"/v1/templates/{made.name}"}


@blueprint.get("/v1/templates/<name>")
@docs.operation("A template, its parts as written", operation_id="get_template", tag="templates",
                responses={200: TemplateDetail}, problems=(401, 404, 500, 503))
def get_template(name: str) -> dict[str, Any]:
    return _library().describe(_name(name))


@blueprint.put("/v1/templates/<name>")
@docs.operation("Replace a stored template's parts (its version grows by one)", operation_id="replace_template",
                tag="templates", body=TemplateParts, responses={200: TemplateDetail}, problems=TEMPLATE_ERRORS)
def replace_template(name: str) -> dict[str, Any]:
    return stored_view(_library().replace(_name(name), _body(TemplateParts)), detail=True)


@blueprint.delete("/v1/templates/<name>")
@docs.operation("Delete a stored template", operation_id="delete_template", tag="templates",
                responses={204: None}, problems=(401, 404, 409, 500, 503))
def delete_template(name: str) -> tuple[str, int]:
    _library().delete(_name(name))
    return "", 204


@blueprint.post("/v1/templates/<name>/render")
@docs.operation("Render a template with variables, without sending", operation_id="render_template",
                tag="templates", body=RenderRequest, responses={200: RenderedTemplate}, problems=TEMPLATE_ERRORS)
def render_template(name: str) -> dict[str, Any]:
    rendered = _library().render(_name(name), _body(RenderRequest).variables)
    return {"template": rendered.template, "version": rendered.version, "label": rendered.label,
            "subject": rendered.subject, "text": rendered.text, "html": rendered.html}
