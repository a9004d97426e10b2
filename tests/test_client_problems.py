"""What API clients are told when the upstream fails: a stable problem type, the SMTP code and text — never the
upstream's host, port or login, which stay in the delivery log for the operator."""

from __future__ import annotations

import logging

import pytest
from api_helpers import HELLO
from smtp_server import HOST, FaultHandler, free_port

from mail_gateway import create_app


def post(settings):
    return create_app(settings).test_client().post("/v1/messages", json=HELLO)


def assert_upstream_not_named(response, port: int) -> None:
    text = response.get_data(as_text=True)
    # The Message-ID's random digits may hold the port's by chance (49747 in <179649747321...>): not a leak.
    message_id = (response.get_json() or {}).get("message_id")
    if message_id:
        text = text.replace(message_id, "")
    assert HOST not in text and str(port) not in text and "Traceback" not in text


@pytest.mark.parametrize(("reply", "status", "slug"), [
    ("554 5.7.1 Rejected by policy", 502, "upstream-refused"),
    ("451 4.3.0 Try again later", 503, "delivery-deferred"),
])
def test_a_refused_message_gets_the_smtp_reply_and_a_stable_type(smtp_server_factory, make_settings, caplog,
                                                                  reply, status, slug) -> None:
    server = smtp_server_factory(FaultHandler(data_reply=reply))
    with caplog.at_level(logging.INFO, logger="mail_gateway.delivery"):
        response = post(make_settings(**server.settings(mail_retry_attempts=1)))
    assert response.status_code == status
    body = response.get_json()
    code, text = reply.split(" ", 1)
    assert body["type"] == f"urn:mail-gateway:problem:{slug}"
    assert body["smtp_code"] == int(code) and body["smtp_text"] == text and text in body["detail"]
    assert_upstream_not_named(response, server.port)
    assert f"{HOST}:{server.port}" in caplog.text  # the operator still learns which upstream


def test_an_unreachable_upstream_is_a_503_that_does_not_name_it(make_settings, caplog) -> None:
    port = free_port()
    with caplog.at_level(logging.INFO, logger="mail_gateway.delivery"):
        response = post(make_settings(mail_backend="smtp", mail_server=HOST, mail_port=port, mail_retry_attempts=1))
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json()["type"] == "urn:mail-gateway:problem:delivery-deferred"
    assert "could not connect" in response.get_json()["detail"]
    assert_upstream_not_named(response, port)
    assert f"{HOST}:{port}" in caplog.text


def test_readiness_does_not_name_the_upstream_either(make_settings) -> None:
    port = free_port()
    response = create_app(make_settings(mail_backend="smtp", mail_server=HOST, mail_port=port)).test_client() \
        .get("/readyz")
    assert response.status_code == 503
    assert_upstream_not_named(response, port)
