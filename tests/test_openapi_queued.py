"""The OpenAPI document describes queued delivery's answers too: each real answer of the send routes (queued,
scheduled, a batch's queued items) and of the status routes validates against the schema the document gives for
its route and status; direct mode's answers still do."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from queue_support import MESSAGE, Queued, queued_app

from mail_gateway import create_app


@pytest.fixture
def queued(make_settings, smtp_server) -> Iterator[Queued]:
    app = queued_app(make_settings, **smtp_server.queued_settings())
    yield app
    app.stop()


def assert_documented(client: Any, response: Any, path: str, method: str) -> dict[str, Any]:
    """The answer's body validates against the schema the document gives for this route and status."""
    document = client.get("/openapi.json").get_json()
    answers = document["paths"][path][method]["responses"]
    assert str(response.status_code) in answers, (path, method, response.status_code)
    schema = answers[str(response.status_code)]["content"]["application/json"]["schema"]
    body = response.get_json()
    errors = [e.message for e in Draft202012Validator({**schema, "components": document["components"]})
              .iter_errors(body)]
    assert errors == [], (path, method, body)
    return body


def _later(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))


def test_the_document_names_the_queued_answers(queued) -> None:
    document = queued.client.get("/openapi.json").get_json()
    validate(document)
    schemas = document["components"]["schemas"]
    assert set(schemas["QueuedResponse"]["properties"]) == {"id", "message_id", "status", "recipients"}
    assert schemas["QueuedResponse"]["properties"]["status"]["$ref"] == "#/components/schemas/QueuedState"
    assert schemas["QueuedState"]["enum"] == ["queued", "scheduled"]
    for path in ("/v1/messages", "/v1/messages/raw"):
        accepted = document["paths"][path]["post"]["responses"]["202"]["content"]["application/json"]["schema"]
        assert {"#/components/schemas/SendResponse", "#/components/schemas/QueuedResponse"} <= {
            ref["$ref"] for ref in accepted["anyOf"]}
    assert "BatchQueued" in schemas and "send_at" in schemas["MessageRequest"]["properties"]


def test_every_queued_answer_is_what_the_document_says(queued) -> None:
    client = queued.client
    body = assert_documented(client, client.post("/v1/messages", json=MESSAGE), "/v1/messages", "post")
    assert body["status"] == "queued"
    later = assert_documented(client, client.post("/v1/messages", json={**MESSAGE, "send_at": _later(600)}),
                              "/v1/messages", "post")
    assert later["recipients"][0]["status"] == "scheduled"
    raw = {"mail_from": "app@example.com", "rcpt_to": ["friend@example.com"],
           "data": base64.b64encode(b"Subject: raw\r\n\r\nbody\r\n").decode()}
    assert_documented(client, client.post("/v1/messages/raw", json=raw), "/v1/messages/raw", "post")
    batch = {"messages": [MESSAGE, {**MESSAGE, "to": []}, {**MESSAGE, "send_at": _later(600)}]}
    results = assert_documented(client, client.post("/v1/messages/batch", json=batch), "/v1/messages/batch",
                                "post")["results"]
    assert [r["status"] for r in results] == ["queued", "failed", "scheduled"]
    queued.wait_status(body["id"], "delivered")
    for message_id in (body["id"], later["id"]):
        assert_documented(client, client.get(f"/v1/messages/{message_id}"), "/v1/messages/{message_id}", "get")
    listed = assert_documented(client, client.get("/v1/messages"), "/v1/messages", "get")
    assert listed["total"] == 5
    assert_documented(client, client.post(f"/v1/messages/{later['id']}/retry"), "/v1/messages/{message_id}/retry",
                      "post")
    assert_documented(client, client.delete(f"/v1/messages/{results[2]['id']}"), "/v1/messages/{message_id}",
                      "delete")


def test_direct_answers_are_still_what_the_document_says(make_settings) -> None:
    client = create_app(make_settings(mail_backend="memory")).test_client()
    body = assert_documented(client, client.post("/v1/messages", json=MESSAGE), "/v1/messages", "post")
    assert body["backend"] == "memory"
    batch = {"messages": [MESSAGE, {**MESSAGE, "to": []}]}
    results = assert_documented(client, client.post("/v1/messages/batch", json=batch), "/v1/messages/batch",
                                "post")["results"]
    assert [r["status"] for r in results] == ["accepted", "failed"]
