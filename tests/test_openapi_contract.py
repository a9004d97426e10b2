"""The HTTP API holds to its own /openapi.json: each request here is judged by the schema the served document gives
it, and what the document calls invalid is refused, as a problem the document lists for that operation."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from api_helpers import HELLO, assert_problem
from hypothesis import example, given, settings
from hypothesis import strategies as st
from smtp_server import HOST

from mail_gateway import create_app


def body_schema(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    schema = document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    return {**schema, "components": document["components"]}


def schema_refuses(document: dict[str, Any], path: str, method: str, body: Any) -> bool:
    validator = jsonschema.Draft202012Validator(body_schema(document, path, method))
    return not validator.is_valid(body)


@pytest.fixture
def client(make_settings):
    app = create_app(make_settings(mail_backend="memory", gateway_public_url="https://mail.example.com",
                                   gateway_unsubscribe_secret="s" * 32))
    return app.test_client()


# A JSON value of another type than the document says, each in a body the document otherwise accepts.
WRONG_TYPES = [
    ("/v1/outbox/chaos", "put", {"percent": True}, "percent"),
    ("/v1/outbox/chaos", "put", {"delay_ms": "5"}, "delay_ms"),
    ("/v1/outbox/chaos", "put", {"enabled": 1}, "enabled"),
    ("/v1/outbox/{message_id}/release", "post", {"to": "b@example.com", "host": "127.0.0.1", "port": True}, "port"),
    ("/v1/outbox/{message_id}/release", "post", {"to": "b@example.com", "host": "127.0.0.1", "port": "1"}, "port"),
    ("/v1/outbox/{message_id}/release", "post", {"to": "b@example.com", "host": "127.0.0.1", "port": 0}, "port"),
    ("/v1/outbox/{message_id}/release", "post", {"to": "b@example.com", "host": "127.0.0.1", "starttls": "true"},
     "starttls"),
    ("/v1/messages", "post", {**HELLO, "unsubscribe": 0}, "unsubscribe"),
    ("/v1/messages", "post", {**HELLO, "unsubscribe": "false"}, "unsubscribe"),
    ("/v1/suppressions", "post", {"address": "ann@example.com", "expires_at": 4102444800}, "expires_at"),
]


# JSON Schema counts 5.0 as an integer: the document's integers take it.
WHOLE_NUMBERS = [("/v1/outbox/chaos", "put", {"percent": 50.0, "delay_ms": 0.0}),
                 ("/v1/outbox/chaos", "put", {"enabled": False, "percent": 100})]


@pytest.mark.parametrize(("path", "method", "body"), WHOLE_NUMBERS, ids=[str(b) for _, _, b in WHOLE_NUMBERS])
def test_a_value_the_document_allows_is_taken(client, path, method, body) -> None:
    document = client.get("/openapi.json").get_json()
    assert not schema_refuses(document, path, method, body)
    answer = client.open(path, method=method.upper(), json=body)
    assert answer.status_code == 200, answer.get_json()
    assert {key: answer.get_json()[key] for key in body} == body


def test_a_release_takes_a_port_written_as_a_whole_number(client, smtp_server_factory) -> None:
    server = smtp_server_factory()
    assert client.post("/v1/messages", json=HELLO).status_code == 202
    kept = client.get("/v1/outbox").get_json()["messages"][0]["id"]
    body = {"to": "b@example.com", "host": HOST, "port": float(server.port)}
    assert not schema_refuses(client.get("/openapi.json").get_json(), "/v1/outbox/{message_id}/release", "post", body)
    answer = client.post(f"/v1/outbox/{kept}/release", json=body)
    assert answer.status_code == 200 and answer.get_json()["released"], answer.get_json()


@pytest.mark.parametrize(("path", "method", "body", "field"), WRONG_TYPES,
                         ids=[f"{m} {p} {f}={b[f]!r}" for p, m, b, f in WRONG_TYPES])
def test_a_value_of_another_json_type_than_documented_is_refused(client, path, method, body, field) -> None:
    document = client.get("/openapi.json").get_json()
    assert schema_refuses(document, path, method, body)
    assert "422" in document["paths"][path][method]["responses"]
    assert client.post("/v1/messages", json=HELLO).status_code == 202
    kept = client.get("/v1/outbox").get_json()["messages"][0]["id"]
    answer = client.open(path.replace("{message_id}", kept), method=method.upper(), json=body)
    problem = assert_problem(answer, 422, "invalid-message")
    assert [error["field"] for error in problem["errors"]] == [field], problem


# Response headers a client acts on (the rest, such as Content-Type, Cache-Control or Date, are HTTP's own).
MEANINGFUL_HEADERS = {"location", "etag", "retry-after", "www-authenticate", "idempotent-replayed",
                      "content-disposition", "ratelimit", "ratelimit-policy"}


def documented_media_type(content: dict[str, Any], mimetype: str) -> str | None:
    """The key of ``content`` the answer's media type falls under: itself, its type's range, or */*."""
    kind = mimetype.partition("/")[0]
    return next((key for key in (mimetype, f"{kind}/*", "*/*") if key in content), None)


def assert_headers_documented(response: dict[str, Any], answer, where: tuple[str, ...]) -> None:
    documented = {name.lower(): header for name, header in response.get("headers", {}).items()}
    sent = {name.lower() for name, _ in answer.headers} & MEANINGFUL_HEADERS
    assert sent <= set(documented), (*where, sorted(sent - set(documented)))
    required = {name for name, header in documented.items() if header.get("required")}
    assert required <= sent, (*where, sorted(required - sent))


def assert_documented(document: dict[str, Any], path: str, method: str, answer) -> None:
    """The answer's status is one the operation lists, its media type and headers ones that status lists, its body
    matches that status's schema, and a problem's type is one the status's description names (where a generated
    client's user looks it up)."""
    responses = document["paths"][path][method]["responses"]
    status = str(answer.status_code)
    assert status in responses, (method, path, status, answer.get_data(as_text=True))
    assert_headers_documented(responses[status], answer, (method, path, status))
    content = responses[status].get("content", {})
    if not content:
        assert not answer.get_data(), (method, path, status)
        return
    key = documented_media_type(content, answer.mimetype)
    assert key is not None, (method, path, status, answer.mimetype, list(content))
    schema = content[key]["schema"]
    if answer.is_json:
        jsonschema.validate(answer.get_json(), {**schema, "components": document["components"]},
                            cls=jsonschema.Draft202012Validator)
    if answer.mimetype == "application/problem+json":
        assert f"`{answer.get_json()['type']}`" in responses[status]["description"], (method, path, status)


def operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [(path, method) for path, methods in document["paths"].items() for method in methods]


@pytest.fixture
def keyed(make_settings):
    """An app with an admin key (ops) and another (dev), a kept message and a stored template."""
    app = create_app(make_settings(mail_backend="memory", gateway_api_keys="ops:k,dev:d", gateway_admin_keys="ops"))
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer k"
    assert client.post("/v1/messages", json=HELLO).status_code == 202
    assert client.post("/v1/templates", json={"name": "hello", "subject": "Hi", "text": "Hi"}).status_code == 201
    kept = client.get("/v1/outbox").get_json()["messages"][0]["id"]
    return client, client.get("/openapi.json").get_json(), kept


def concrete(path: str, kept: str) -> str:
    values = {"message_id": kept, "index": "0", "name": "hello", "address": "ann@example.com", "inbound_id": "x"}
    for name, value in values.items():
        path = path.replace(f"{{{name}}}", value)
    return path


@pytest.mark.parametrize("headers", [{"Host": "elsewhere.example"}, {"Authorization": "Bearer k, Bearer k"}],
                         ids=["host-not-allowed", "authorization-twice"])
def test_every_operation_lists_the_400_any_request_may_get(keyed, headers) -> None:
    client, document, kept = keyed
    for path, method in operations(document):
        if "Authorization" in headers and "security" not in document["paths"][path][method]:
            continue  # an open route reads no Authorization
        answer = client.open(concrete(path, kept), method=method.upper(), headers=headers)
        assert answer.status_code == 400, (method, path)
        assert_documented(document, path, method, answer)


def test_every_problem_type_a_route_answers_is_listed_in_its_document(keyed) -> None:
    client, document, kept = keyed
    dev = {"Authorization": "Bearer d"}
    cases = [
        ("/v1/suppressions/{address}", "delete", {}, None, "no-such-suppression"),
        ("/v1/outbox/wait?timeout=0&query=nothing-matches", "get", {}, None, "no-matching-message"),
        ("/v1/outbox/{message_id}", "patch", {}, {"read": "yes"}, "invalid-body"),
        ("/v1/outbox/bulk", "post", {}, {"action": "read"}, "invalid-body"),
        ("/v1/outbox?owner=ops", "get", dev, None, "owner-not-allowed"),
        ("/v1/outbox/wait?timeout=0&owner=ops", "get", dev, None, "owner-not-allowed"),
        ("/v1/outbox/owners", "get", dev, None, "owner-not-allowed"),
    ]
    for url, method, headers, body, slug in cases:
        answer = client.open(concrete(url, kept), method=method.upper(), headers=headers, json=body)
        assert answer.is_json and answer.get_json()["type"] == f"urn:mail-gateway:problem:{slug}", (url, answer.json)
        assert_documented(document, url.partition("?")[0], method, answer)


def key_schema(document: dict[str, Any]) -> dict[str, Any]:
    [parameter] = [p for p in document["paths"]["/v1/messages"]["post"]["parameters"] if p["name"] == "Idempotency-Key"]
    return parameter["schema"]


printable = st.text(alphabet=st.sampled_from([chr(c) for c in range(0x20, 0x7F)] + [",", '"', "\\", " "] * 8),
                    min_size=1, max_size=12)


def test_an_idempotency_key_is_taken_exactly_when_the_document_says_it_is_valid(client) -> None:
    validator = jsonschema.Draft202012Validator(key_schema(client.get("/openapi.json").get_json()))
    seen: set[bool] = set()

    @settings(max_examples=150, deadline=None, derandomize=True, database=None)
    @example(key="a,b")  # a comma outside quotes: two keys joined, refused as duplicate-header
    @example(key='"a,b"')  # within a quoted string (an RFC 8941 sf-string), one key
    @example(key='x"a,b')  # a quote that never closes leaves the comma outside
    @given(key=printable)
    def run(key: str) -> None:
        answer = client.post("/v1/messages", json=HELLO, headers={"Idempotency-Key": key})
        assert answer.status_code in (202, 400), answer.get_data(as_text=True)
        seen.add(validator.is_valid(key))
        assert (answer.status_code == 202) == validator.is_valid(key), (key, answer.get_data(as_text=True))

    run()
    assert seen == {True, False}


def test_every_success_is_sent_with_a_media_type_and_headers_the_document_lists(keyed) -> None:
    client, document, kept = keyed
    message = {**HELLO, "attachments": [{"filename": "notes.txt", "content": "QUJD"},
                                        {"filename": "report.pdf", "content": "QUJD"}]}
    assert client.post("/v1/messages", json=message).status_code == 202
    with_files = client.get("/v1/outbox").get_json()["messages"][0]["id"]
    listing = client.get("/v1/outbox")
    cases = [
        ("/v1/outbox/{message_id}/attachments/{index}", "get", client.get(f"/v1/outbox/{with_files}/attachments/0")),
        ("/v1/outbox/{message_id}/attachments/{index}", "get", client.get(f"/v1/outbox/{with_files}/attachments/1")),
        ("/v1/outbox/{message_id}/raw", "get", client.get(f"/v1/outbox/{kept}/raw?download=1")),
        ("/v1/outbox", "get", listing),
        ("/v1/outbox", "get", client.get("/v1/outbox", headers={"If-None-Match": listing.headers["ETag"]})),
        ("/v1/templates", "post", client.post("/v1/templates", json={"name": "bye", "subject": "Bye", "text": "Bye"})),
        ("/v1/suppressions", "post", client.post("/v1/suppressions", json={"address": "ann@example.com"})),
    ]
    first = client.post("/v1/messages", json=HELLO, headers={"Idempotency-Key": "once"})
    cases += [("/v1/messages", "post", first),
              ("/v1/messages", "post", client.post("/v1/messages", json=HELLO, headers={"Idempotency-Key": "once"}))]
    assert [answer.status_code for _, _, answer in cases] == [200, 200, 200, 200, 304, 201, 201, 202, 202]
    assert cases[0][2].mimetype == "text/plain" and cases[1][2].mimetype == "application/pdf"
    for path, method, answer in cases:
        assert_documented(document, path, method, answer)


def test_every_problem_is_sent_with_the_headers_the_document_lists(keyed) -> None:
    client, document, kept = keyed
    for path, method in operations(document):
        if "security" in document["paths"][path][method]:
            answer = client.open(concrete(path, kept), method=method.upper(), headers={"Authorization": ""})
            assert answer.status_code == 401 and answer.headers["WWW-Authenticate"], (method, path)
            assert_documented(document, path, method, answer)
    chaos = {"enabled": True, "reply": "451", "percent": 100}
    assert client.put("/v1/outbox/chaos", json=chaos).status_code == 200
    raw = {"mail_from": "app@example.com", "rcpt_to": ["friend@example.com"], "data": "U3ViamVjdDogeA0KDQp4DQo="}
    for path, body in (("/v1/messages", HELLO), ("/v1/messages/raw", raw)):
        deferred = client.post(path, json=body, headers={"Idempotency-Key": f"deferred {path}"})
        assert deferred.status_code == 503 and deferred.headers["Retry-After"], deferred.get_json()
        assert_documented(document, path, "post", deferred)


def test_a_number_in_a_path_is_documented_as_the_route_matches_it(keyed) -> None:
    client, document, kept = keyed
    [index] = [p for p in document["paths"]["/v1/outbox/{message_id}/attachments/{index}"]["get"]["parameters"]
               if p["name"] == "index"]
    validator = jsonschema.Draft202012Validator(index["schema"])
    assert validator.is_valid(0)
    assert client.get(f"/v1/outbox/{kept}/attachments/0").status_code == 404  # HELLO has no attachment
    # Werkzeug's int converter matches no sign: no route serves -1, so the document may not offer it.
    assert client.get(f"/v1/outbox/{kept}/attachments/-1").get_json()["type"] == "about:blank"
    assert not validator.is_valid(-1)
