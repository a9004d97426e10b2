"""MkDocs hook: the HTTP API reference, rendered from the app's own OpenAPI document at every build.

A page writes ``<!-- openapi-reference -->``; the hook builds the service (``create_app``, memory backend, in a
temporary directory), asks it for ``GET /openapi.json`` as a client would, and writes every operation (grouped by
tag), every webhook and every schema as Markdown. The document is generated from the routes and the pydantic
models the app really serves, so this page cannot drift from them.
"""

from __future__ import annotations

import html
import os
import re
import tempfile
from contextlib import chdir
from typing import Any

from mkdocs.exceptions import PluginError

MARKER = re.compile(r"<!--\s*openapi-reference\s*-->")
METHODS = ("get", "post", "put", "patch", "delete")


def openapi_document() -> dict[str, Any]:
    """The document the service serves at /openapi.json, built without the developer's environment or .env."""
    from mail_gateway.app import create_app
    from mail_gateway.runtime import Runtime
    from mail_gateway.settings import GatewaySettings

    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.startswith(("MAIL_", "GATEWAY_"))}
    try:
        with tempfile.TemporaryDirectory() as folder, chdir(folder):
            app = create_app(GatewaySettings(_env_file=None, gateway_env="testing", mail_backend="memory"))
            try:
                answer = app.test_client().get("/openapi.json")
                if answer.status_code != 200:
                    raise PluginError(f"GET /openapi.json answered {answer.status_code}: {answer.get_data(True)}")
                return answer.get_json()
            finally:
                Runtime.of(app).close()
    finally:
        os.environ.update(saved)


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _text(text: Any) -> str:
    """The document's own prose in a cell: its <style> or <id> is text, never HTML."""
    return _cell(html.escape(str(text), quote=False))


def schema_type(schema: dict[str, Any]) -> str:
    """A schema in a few words, linking named schemas to their section below."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#schema-{name.lower()})"
    for combiner in ("anyOf", "oneOf"):
        if combiner in schema:
            return " or ".join(schema_type(option) for option in schema[combiner])
    if "enum" in schema:
        return "one of " + ", ".join(f"`{value}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type", "any")
    if kind == "array":
        return "list of " + schema_type(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "object of " + schema_type(schema["additionalProperties"])
    if isinstance(kind, list):
        return " or ".join(kind)
    return kind + (f" ({schema['format']})" if "format" in schema else "")


def _parameters(operation: dict[str, Any]) -> list[str]:
    parameters = operation.get("parameters", [])
    if not parameters:
        return []
    lines = ["| Parameter | In | Required | Type | Description |", "|---|---|---|---|---|"]
    for item in parameters:
        lines.append(f"| `{item['name']}` | {item['in']} | {'yes' if item.get('required') else 'no'} | "
                     f"{_cell(schema_type(item.get('schema', {})))} | {_text(item.get('description', ''))} |")
    return ["**Parameters**", "", *lines, ""]


def _content(content: dict[str, Any]) -> str:
    return "; ".join(f"`{media}` {schema_type(body.get('schema', {}))}" for media, body in content.items())


def _responses(operation: dict[str, Any]) -> list[str]:
    lines = ["**Responses**", "", "| Status | Meaning | Body |", "|---|---|---|"]
    for status, response in operation.get("responses", {}).items():
        lines.append(f"| {status} | {_text(response.get('description', ''))} | "
                     f"{_cell(_content(response.get('content', {})))} |")
    return [*lines, ""]


def operation_markdown(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", "", _text(operation.get("summary", ""))]
    if operation.get("description"):
        lines += ["", _text(operation["description"])]
    lines += ["", f"Operation `{operation.get('operationId', '')}`.", "", *_parameters(operation)]
    body = operation.get("requestBody")
    if body:
        lines += ["**Request body**: " + _content(body.get("content", {})), ""]
    return lines + _responses(operation)


def schema_markdown(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name} {{#schema-{name.lower()}}}", ""]
    if schema.get("description"):
        lines += [_text(schema["description"]), ""]
    properties = schema.get("properties")
    if not properties:
        return lines + [f"Type: {schema_type(schema)}", ""]
    required = set(schema.get("required", []))
    lines += ["| Field | Type | Required | Description |", "|---|---|---|---|"]
    for field, spec in properties.items():
        lines.append(f"| `{field}` | {_cell(schema_type(spec))} | {'yes' if field in required else 'no'} | "
                     f"{_text(spec.get('description', ''))} |")
    return lines + [""]


def reference(document: dict[str, Any]) -> str:
    by_tag: dict[str, list[str]] = {tag["name"]: [] for tag in document.get("tags", [])}
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                tag = (item[method].get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).extend(operation_markdown(path, method, item[method]))
    descriptions = {tag["name"]: tag.get("description", "") for tag in document.get("tags", [])}
    lines = [f"OpenAPI {document['openapi']}: {document['info'].get('description', '')}", ""]
    for tag, operations in by_tag.items():
        lines += [f"## {tag}", "", _text(descriptions.get(tag, "")), "", *operations]
    if document.get("webhooks"):
        lines += ["## Webhooks", "", "What the gateway POSTs to a webhook URL, named by the event's `type`.", ""]
        for name, item in document["webhooks"].items():
            lines += operation_markdown(name, "post", item["post"])
    lines += ["## Schemas", ""]
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        lines += schema_markdown(name, schema)
    return "\n".join(lines)


def on_page_markdown(markdown: str, **_: Any) -> str:
    if not MARKER.search(markdown):
        return markdown
    text = reference(openapi_document())
    return MARKER.sub(lambda _: text, markdown)
