"""A header that must arrive once (Idempotency-Key, Authorization, Content-Type, Host) and arrives twice is a 400
naming it, never the two values joined and taken as one. Werkzeug's test client joins a repeated header as
waitress does (``a, b``), its development server without the space (``a,b``); both are sent here. The same
requests over a socket to ``mail-gateway serve`` are in test_http_server.py."""

from __future__ import annotations

import pytest
from api_helpers import HELLO, assert_problem, fields, outbox

from mail_gateway import create_app

KEY = "first-secret-key"


@pytest.fixture
def app(make_settings, tmp_path):
    return create_app(make_settings(mail_backend="memory", gateway_api_keys=f"{KEY},second-secret-key",
                                    gateway_idempotency_url=f"sqlite:///{tmp_path}/keys.sqlite3"))


def post(app, *headers: tuple[str, str]):
    named = {name.lower() for name, _ in headers}
    headers = (*headers, *([("Authorization", f"Bearer {KEY}")] if "authorization" not in named else []))
    return app.test_client().post("/v1/messages", json=HELLO, headers=list(headers))


def assert_sent_twice(response, header: str) -> None:
    body = assert_problem(response, 400, "duplicate-header")
    assert fields(body) == [header] and f"send {header} once" in body["detail"]


@pytest.mark.parametrize("headers", [
    [("Idempotency-Key", "a"), ("Idempotency-Key", "b")],
    [("Idempotency-Key", "a"), ("Idempotency-Key", "a")],
    [("Idempotency-Key", "a,b")],  # as Werkzeug's development server joins the two
    [("Idempotency-Key", '"a", "b"')],  # two sf-strings, as the draft writes a key
], ids=["two-keys", "one-key-twice", "joined-without-space", "two-quoted"])
def test_an_idempotency_key_sent_twice_is_400_and_sends_nothing(app, headers) -> None:
    # The two joined ("a, b") were taken as a key of their own: another retry's duplicate was another key.
    assert_sent_twice(post(app, *headers), "Idempotency-Key")
    assert outbox(app) == []


def test_a_comma_inside_a_quoted_key_is_one_key(app) -> None:
    first = post(app, ("Idempotency-Key", '"order 7, receipt"'))
    again = post(app, ("Idempotency-Key", '"order 7, receipt"'))
    assert first.status_code == again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert len(outbox(app)) == 1


@pytest.mark.parametrize("values", [(f"Bearer {KEY}", f"Bearer {KEY}"), (f"Bearer {KEY}", "Bearer second-secret-key"),
                                    (f"Bearer {KEY}", "Bearer wrong")])
def test_authorization_sent_twice_is_400_not_an_invalid_key(app, values) -> None:
    # It was 401 "The API key is not valid" for two valid keys: the client was sent to check a key that was right.
    assert_sent_twice(post(app, *(("Authorization", value) for value in values)), "Authorization")
    assert outbox(app) == []


@pytest.mark.parametrize("allowed", [None, "*"])
def test_host_sent_twice_is_400(make_settings, allowed) -> None:
    # RFC 9112 section 3.2: a 400. It was served under GATEWAY_ALLOWED_HOSTS=*, and otherwise refused as a host
    # name ("localhost, localhost") to add to GATEWAY_ALLOWED_HOSTS.
    app = create_app(make_settings(mail_backend="memory", gateway_allowed_hosts=allowed))
    client = app.test_client()
    for hosts in (["localhost", "localhost"], ["localhost", "attacker.example"], ["localhost,attacker.example"]):
        assert_sent_twice(client.get("/healthz", headers=[("Host", host) for host in hosts]), "Host")
    assert client.get("/healthz", headers={"Host": "localhost:8000"}).status_code == 200


@pytest.mark.parametrize("value", ["application/json, application/json", "text/plain,application/json"])
def test_content_type_sent_twice_is_400_not_another_media_type(app, value) -> None:
    # The test client keeps the first of two Content-Type headers, so they are sent here as servers join them.
    response = app.test_client().post("/v1/messages", data=b'{"to": "a@example.com"}',
                                      headers={"Content-Type": value, "Authorization": f"Bearer {KEY}"})
    assert_sent_twice(response, "Content-Type")


def test_a_comma_inside_a_quoted_parameter_is_one_content_type(app) -> None:
    response = app.test_client().post("/v1/messages", json=HELLO, headers={
        "Content-Type": 'application/json; profile="a,b"', "Authorization": f"Bearer {KEY}"})
    assert response.status_code == 202
