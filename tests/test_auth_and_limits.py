"""API keys on every /v1 route, the production start-up rule, the body size limit and the recipient limit."""

from __future__ import annotations

import base64
import io
import logging

import pytest
from api_helpers import HELLO, assert_problem, fields, outbox
from flask import Blueprint

from mail_gateway import create_app
from mail_gateway.errors import ConfigurationError
from mail_gateway.settings import load_settings

KEYS = "first-secret-key,second-secret-key"


@pytest.fixture
def app(make_settings):
    return create_app(make_settings(mail_backend="memory", gateway_api_keys=KEYS))


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer wrong-key", "Basic Zmlyc3Q=",
                                           "Bearer first-secret-key-but-longer", "Bearer first-secret-ke"])
def test_v1_without_a_valid_key_is_401(app, authorization) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = app.test_client().post("/v1/messages", json=HELLO, headers=headers)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "secret" not in response.get_data(as_text=True)
    assert outbox(app) == []


@pytest.mark.parametrize("key", ["first-secret-key", "second-secret-key"])
def test_any_configured_key_is_accepted(app, key) -> None:
    response = app.test_client().post("/v1/messages", json=HELLO, headers={"Authorization": f"bearer {key}"})
    assert response.status_code == 202


def test_every_v1_path_is_protected_even_one_added_later(app) -> None:
    later = Blueprint("later", __name__)
    later.add_url_rule("/v1/outbox", "outbox", lambda: {"messages": []})
    app.register_blueprint(later)
    client = app.test_client()
    assert_problem(client.get("/v1/outbox"), 401)
    assert_problem(client.get("/v1/nowhere"), 401)
    assert_problem(client.post("/v1/messages/batch", json={"messages": [HELLO]}), 401)
    assert_problem(client.post("/v1/messages/raw", json={}), 401)
    assert client.get("/v1/outbox", headers={"Authorization": "Bearer second-secret-key"}).status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/v1x").status_code == 404  # only /v1 and below


def test_keys_never_reach_logs_or_reprs(make_settings, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings(mail_backend="memory", gateway_api_keys=KEYS)
    app = create_app(settings)
    client = app.test_client()
    client.post("/v1/messages", json=HELLO, headers={"Authorization": "Bearer first-secret-key"})
    client.post("/v1/messages", json=HELLO, headers={"Authorization": "Bearer wrong-secret-guess"})
    # The key values, not the word: GATEWAY_WEBHOOK_SECRET's name is in every repr.
    for secret in ("first-secret-key", "second-secret-key", "wrong-secret-guess"):
        assert secret not in caplog.text
        assert secret not in repr(settings) and secret not in str(settings.model_dump())


def test_production_refuses_to_build_the_service_without_keys(monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_ENV", "production")
    monkeypatch.setenv("MAIL_SERVER", "smtp.example.com")
    with pytest.raises(ConfigurationError) as caught:
        create_app(load_settings())
    assert caught.value.variable == "GATEWAY_API_KEYS"
    assert "GATEWAY_API_KEYS" in str(caught.value) and "GATEWAY_ALLOW_ANONYMOUS" in str(caught.value)
    monkeypatch.setenv("GATEWAY_ALLOW_ANONYMOUS", "true")
    assert create_app(load_settings()) and load_settings().api_keys == ()
    monkeypatch.delenv("GATEWAY_ALLOW_ANONYMOUS")
    monkeypatch.setenv("GATEWAY_API_KEYS", " k1 , k2 ")
    assert create_app(load_settings()) and load_settings().api_keys == ("k1", "k2")


@pytest.mark.parametrize(("value", "reason"), [
    ("k1,,k2", "empty key"), ("k1,with space", "space"),
    # A header's bytes arrive as Latin-1: this key was accepted, and no Authorization header could ever match it.
    ("k1,a:kéy", "not ASCII")])
def test_malformed_keys_fail_at_start_up_without_showing_them(monkeypatch, value, reason) -> None:
    monkeypatch.setenv("GATEWAY_API_KEYS", value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("GATEWAY_API_KEYS is invalid") and reason in message and "k1" not in message


@pytest.mark.parametrize(
    ("env", "variable"),
    [({"GATEWAY_MAX_BATCH": "0"}, "GATEWAY_MAX_BATCH"), ({"GATEWAY_MAX_RECIPIENTS": "many"}, "GATEWAY_MAX_RECIPIENTS"),
     ({"GATEWAY_MAX_MESSAGE_BYTES": "10"}, "GATEWAY_MAX_MESSAGE_BYTES"),
     ({"GATEWAY_IDEMPOTENCY_URL": "redis://x"}, "GATEWAY_STORE_URL")],  # the old name of GATEWAY_STORE_URL
)
def test_invalid_limits_fail_at_start_up(monkeypatch, env, variable) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.variable == variable and "set it to" in str(caught.value)


def test_a_body_over_gateway_max_message_bytes_is_413_before_parsing(make_settings) -> None:
    app = create_app(make_settings(mail_backend="memory", gateway_max_message_bytes=4096))
    big = {**HELLO, "attachments": [{"filename": "a.bin", "content": base64.b64encode(bytes(4096)).decode()}]}
    body = assert_problem(app.test_client().post("/v1/messages", json=big), 413, "request-too-large")
    assert "GATEWAY_MAX_MESSAGE_BYTES" in body["detail"] and body["max_bytes"] == 4096
    # Not even read as JSON: a broken body of that size is still 413, not 400.
    response = app.test_client().post("/v1/messages/raw", data=b"{" * 5000, content_type="application/json")
    assert_problem(response, 413)
    assert outbox(app) == []
    assert app.test_client().post("/v1/messages", json=HELLO).status_code == 202


def test_a_chunked_body_over_the_limit_is_413(make_settings) -> None:
    app = create_app(make_settings(mail_backend="memory", gateway_max_message_bytes=2048))
    body = b"[" + b" " * 5000 + b"]"
    # Chunked, so Werkzeug ignores the Content-Length: the limit must hold while the body is read.
    response = app.test_client().post("/v1/messages", input_stream=io.BytesIO(body), content_type="application/json",
                                      headers={"Transfer-Encoding": "chunked"},
                                      environ_overrides={"wsgi.input_terminated": True})
    assert_problem(response, 413)


def test_more_recipients_than_gateway_max_recipients_is_422(make_settings) -> None:
    app = create_app(make_settings(mail_backend="memory", gateway_max_recipients=3))
    client = app.test_client()
    payload = {**HELLO, "to": ["a@example.com", "b@example.com"], "cc": ["c@example.com"],
               "bcc": ["d@example.com"]}
    body = assert_problem(client.post("/v1/messages", json=payload), 422)
    assert "to" in fields(body) and "GATEWAY_MAX_RECIPIENTS" in body["errors"][0]["message"]
    raw = {"mail_from": "app@example.com", "rcpt_to": [f"r{n}@example.com" for n in range(4)], "data": "QUJD"}
    assert "rcpt_to" in fields(assert_problem(client.post("/v1/messages/raw", json=raw), 422))
    result = client.post("/v1/messages/batch", json={"messages": [payload, HELLO]}).get_json()["results"]
    assert [r["status"] for r in result] == ["failed", "accepted"]
    assert len(outbox(app)) == 1
    assert client.post("/v1/messages", json={**payload, "bcc": []}).status_code == 202


def test_every_whole_number_query_parameter_has_bounds(make_settings) -> None:
    """A query parameter without an upper bound reached the store as it came: 2**63 was a 500 from SQLite."""
    from annotated_types import Ge, Le

    from mail_gateway.http import docs

    app = create_app(make_settings(mail_backend="memory"))
    models = {getattr(view, docs.ATTRIBUTE).query for view in app.view_functions.values()
              if getattr(view, docs.ATTRIBUTE, None) is not None} - {None}
    assert len(models) >= 2  # the queue's list and the outbox's
    for model in models:
        for name, field in model.model_fields.items():
            if field.annotation is int:
                kinds = {type(m) for m in field.metadata}
                assert {Ge, Le} <= kinds, f"{model.__name__}.{name} needs ge and le"
