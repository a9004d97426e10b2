"""GET /openapi.json: a valid OpenAPI 3.1 document, generated from the models, covering every route."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Blueprint
from openapi_spec_validator import validate

from mail_gateway import create_app
from mail_gateway.http.openapi import openapi_path
from mail_gateway.http.schemas import RawMessageRequest
from mail_gateway.mail.request import Attachment, MessageRequest


@pytest.fixture
def document(make_settings) -> dict:
    app = create_app(make_settings(mail_backend="memory", gateway_api_keys="k1"))
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def test_it_is_a_valid_openapi_3_1_document(document) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_route_of_the_app_is_documented(make_settings, document) -> None:
    app = create_app(make_settings(mail_backend="memory"))
    served = {(openapi_path(rule.rule), method.lower())
              for rule in app.url_map.iter_rules() if rule.endpoint != "static"
              and not rule.rule.startswith(("/outbox", "/u/"))  # the outbox page, unsubscribe links: for a browser
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert served == documented


@pytest.mark.parametrize("outbox_enabled", [True, False])
def test_the_outbox_page_and_its_files_stay_out_of_the_document(make_settings, outbox_enabled) -> None:
    app = create_app(make_settings(mail_backend="memory", gateway_outbox_enabled=outbox_enabled))
    assert any(rule.rule.startswith("/outbox") for rule in app.url_map.iter_rules())
    document = app.test_client().get("/openapi.json").get_json()
    assert [path for path in document["paths"] if not path.startswith(("/v1/", "/healthz", "/readyz", "/metrics",
                                                                       "/openapi.json"))] == []
    media_types = {media for operations in document["paths"].values() for operation in operations.values()
                   for response in operation["responses"].values() for media in response.get("content", {})}
    assert "text/html" not in media_types


def test_every_operation_has_its_own_operation_id_and_a_described_tag(document) -> None:
    operations = [(path, method, operation) for path, methods in document["paths"].items()
                  for method, operation in methods.items()]
    ids = [operation.get("operationId") for _, _, operation in operations]
    assert all(isinstance(i, str) and re.fullmatch(r"[a-z]+(_[a-z]+)*", i) for i in ids), ids
    assert len(set(ids)) == len(ids), ids
    described = {tag["name"] for tag in document["tags"] if tag.get("description")}
    assert {tag for _, _, operation in operations for tag in operation.get("tags", [])} == described
    assert all(len(operation.get("tags", [])) == 1 for _, _, operation in operations)
    by_path = {(path, method): operation["operationId"] for path, method, operation in operations}
    assert by_path[("/v1/messages", "post")] == "send_message" and by_path[("/v1/messages", "get")] == "list_messages"


def _inline(node: Any, where: str) -> Iterator[str]:
    """Where an enum of several values, or an object with fields or entries, is written out in place rather
    than referred to by name (a generated client would have to make up a name for it)."""
    if isinstance(node, dict):
        several = len(node.get("enum", [])) > 1
        fielded = node.get("type") == "object" and ({"properties", "additionalProperties", "patternProperties"}
                                                   & set(node))
        if several or fielded:
            yield where
        for key, value in node.items():
            yield from _inline(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _inline(value, f"{where}/{index}")


def test_every_enum_and_object_is_a_named_schema(document) -> None:
    named = document["components"]["schemas"]
    found = [where for name, schema in named.items()
             for key, value in schema.items() for where in _inline(value, f"{name}/{key}")]
    found += list(_inline(document["paths"], "paths"))
    assert found == []
    assert named["QueuedState"]["enum"] == ["queued", "scheduled"]
    assert named["QueuedResponse"]["properties"]["status"]["$ref"] == "#/components/schemas/QueuedState"


def test_bodies_come_from_the_pydantic_models(document) -> None:
    schemas = document["components"]["schemas"]
    assert set(schemas["MessageRequest"]["properties"]) == {
        field.alias or name for name, field in MessageRequest.model_fields.items()}
    assert set(schemas["RawMessageRequest"]["properties"]) == set(RawMessageRequest.model_fields)
    assert schemas["Attachment"]["properties"]["content_id"] == \
        Attachment.model_json_schema()["properties"]["content_id"]
    assert schemas["MessageRequest"]["additionalProperties"] is False


def test_v1_routes_declare_the_api_key_and_every_problem(document) -> None:
    operation = document["paths"]["/v1/messages"]["post"]
    assert operation["security"] == [{"bearerAuth": []}]
    assert {"400", "401", "409", "413", "415", "422", "502", "503"} <= set(operation["responses"])
    problem = operation["responses"]["422"]["content"]["application/problem+json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/ProblemDetails"}
    assert "urn:mail-gateway:problem:invalid-message" in operation["responses"]["422"]["description"]
    assert [p["name"] for p in operation["parameters"]] == ["Idempotency-Key"]
    assert "security" not in document["paths"]["/healthz"]["get"]


# What ``mail-gateway serve`` answers itself, before any route runs: every operation may get these.
SERVER_REFUSALS = {"400": "malformed-request", "408": "request-timeout", "431": "header-too-large",
                   "501": "unsupported-transfer-encoding"}


def test_every_operation_lists_the_refusals_of_the_server_itself(make_settings) -> None:
    app = create_app(make_settings(mail_backend="memory", gateway_api_keys="k1"))
    later = Blueprint("later", __name__)
    later.get("/v1/undescribed")(lambda: {})  # a route that did not describe itself is listed with them too
    app.register_blueprint(later)
    document = app.test_client().get("/openapi.json").get_json()
    validate(document)
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            for status, slug in SERVER_REFUSALS.items():
                response = operation["responses"].get(status, {})
                assert f"`urn:mail-gateway:problem:{slug}`" in response.get("description", ""), (path, method, status)
                assert response["content"]["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/ProblemDetails"}
            for status in ("408", "431", "501"):
                assert "mail-gateway serve" in operation["responses"][status]["description"], (path, method, status)


def test_without_keys_the_document_does_not_ask_for_one(make_settings) -> None:
    document = create_app(make_settings(mail_backend="memory")).test_client().get("/openapi.json").get_json()
    assert "security" not in document["paths"]["/v1/messages"]["post"]


def test_a_route_added_by_another_blueprint_is_documented_too(make_settings) -> None:
    from flask import Blueprint

    app = create_app(make_settings(mail_backend="memory", gateway_api_keys="k1"))
    later = Blueprint("later", __name__)

    @later.get("/v1/items/<int:message_id>")
    def item(message_id: int) -> dict:
        """One item of a later blueprint.

        More text that stays out of the summary."""
        return {}

    app.register_blueprint(later)
    document = app.test_client().get("/openapi.json").get_json()
    validate(document)
    operation = document["paths"]["/v1/items/{message_id}"]["get"]
    assert operation["summary"] == "One item of a later blueprint."
    assert operation["parameters"] == [{"name": "message_id", "in": "path", "required": True,
                                        "schema": {"type": "integer", "minimum": 0}}]
    assert operation["security"] == [{"bearerAuth": []}]
    assert operation["operationId"] == "get_item" and operation["tags"] == ["later"]
    assert {"name": "later"} in document["tags"]


def test_a_view_served_at_two_paths_gets_an_operation_id_for_each(make_settings) -> None:
    from mail_gateway.outbox.api import outbox_blueprint

    app = create_app(make_settings(mail_backend="memory"))
    app.register_blueprint(outbox_blueprint("mirror", "/v1/mirror"))
    document = app.test_client().get("/openapi.json").get_json()
    validate(document)
    assert document["paths"]["/v1/outbox"]["get"]["operationId"] == "list_outbox_messages"
    assert document["paths"]["/v1/mirror"]["get"]["operationId"] == "list_outbox_messages_2"
    ids = [operation["operationId"] for methods in document["paths"].values() for operation in methods.values()]
    assert len(set(ids)) == len(ids)


def test_the_outbox_routes_are_described_from_their_models(document) -> None:
    listing = document["paths"]["/v1/outbox"]["get"]
    query = {p["name"]: p for p in listing["parameters"] if p["in"] == "query"}
    assert set(query) == {"limit", "start", "to", "from", "subject", "query", "owner"}
    assert query["limit"]["schema"]["maximum"] == 1000 and query["limit"]["schema"]["minimum"] == 1
    assert not any(p["required"] for p in query.values())
    page = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert page == {"$ref": "#/components/schemas/OutboxPage"}
    assert "MessageSummary" in document["components"]["schemas"]
    one = document["paths"]["/v1/outbox/{message_id}"]
    assert one["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/MessageDetail"}
    for deleting in (one["delete"], document["paths"]["/v1/outbox"]["delete"]):
        assert {s for s in deleting["responses"] if s.startswith("2")} == {"204"}
    raw = document["paths"]["/v1/outbox/{message_id}/raw"]["get"]["responses"]["200"]["content"]
    assert set(raw) == {"message/rfc822"}
    assert one["patch"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReadMark"}
    waiting = document["paths"]["/v1/outbox/wait"]["get"]
    assert waiting["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/MessageSummary"}
    assert {"/v1/outbox/bulk", "/v1/outbox/owners"} <= set(document["paths"])
    assert set(document["components"]["schemas"]["MessageSummary"]["properties"]) >= {
        "snippet", "tags", "read", "owner", "template"}
    assert set(document["components"]["schemas"]["MessageDetail"]["properties"]) >= {
        "links", "codes", "delivery", "remote_content"}


def test_every_documented_answer_is_what_the_route_really_returns(make_settings) -> None:
    from mail_gateway.outbox.models import MessageDetail, OutboxPage

    app = create_app(make_settings(mail_backend="memory"))
    client = app.test_client()
    sent = client.post("/v1/messages", json={"from": "app@example.com", "to": "a@example.com", "text": "x"})
    assert sent.status_code == 202
    page = OutboxPage.model_validate(client.get("/v1/outbox").get_json())
    detail = MessageDetail.model_validate(client.get(f"/v1/outbox/{page.messages[0].id}").get_json())
    assert detail.message_id == sent.get_json()["message_id"]
