"""The outbox's chaos switch: the development backends fail on purpose, answered exactly as a real upstream's
reply is, deterministic, logged as injected, and never in production. (test_chaos.py is the queue's kill -9.)"""

from __future__ import annotations

import logging
import time

import pytest
from queue_support import queued_app
from smtp_server import FaultHandler, RefusingSMTP

from mail_gateway import create_app
from mail_gateway.errors import ConfigurationError

MESSAGE = {"from": "App <app@example.com>", "to": ["friend@example.com"], "subject": "Hello", "text": "Hi there"}
KEY = "chaos-test-key-0123456789"
# What a real aiosmtpd server does to answer each reply the switch injects.
REAL = {
    "421": ({}, {"smtp_class": RefusingSMTP}),
    "451": ({"data_reply": "451 4.3.0 Requested action aborted: local error in processing"}, {}),
    "550 5.1.1": ({"default_rcpt_reply": "550 5.1.1 No such user"}, {}),
    "552": ({"data_reply": "552 5.3.4 Message size exceeds fixed maximum message size"}, {}),
}


def send(client, to: str = "friend@example.com"):
    return client.post("/v1/messages", json={**MESSAGE, "to": [to]})


def switch(client, **body):
    response = client.put("/v1/outbox/chaos", json=body)
    assert response.status_code == 200, response.json
    return response.json


def answer(response) -> tuple[int, str, int | None]:
    return response.status_code, response.json["type"], response.json.get("smtp_code")


@pytest.mark.parametrize("reply", sorted(REAL))
def test_an_injected_reply_is_answered_as_a_real_upstreams_same_reply(reply, make_settings,
                                                                      smtp_server_factory) -> None:
    handler, server_options = REAL[reply]
    server = smtp_server_factory(FaultHandler(**handler), **server_options)
    real = send(create_app(make_settings(**server.settings(mail_retry_attempts=1))).test_client())
    client = create_app(make_settings(mail_backend="memory")).test_client()
    switch(client, enabled=True, reply=reply)
    injected = send(client)
    assert answer(injected) == answer(real)
    assert injected.headers.get("Retry-After") == real.headers.get("Retry-After")
    assert client.get("/v1/outbox").json["total"] == 0  # it never reached the backend


def test_each_injected_failure_is_logged_injected_and_listed(make_settings, caplog) -> None:
    client = create_app(make_settings(mail_backend="memory")).test_client()
    switch(client, enabled=True, reply="550 5.1.1")
    with caplog.at_level(logging.INFO, logger="mail_gateway.delivery"):
        refused = send(client, "nobody@example.com")
    assert refused.status_code == 422
    assert refused.json["recipients"][0]["email"] == "nobody@example.com"
    [line] = [r.getMessage() for r in caplog.records if r.name == "mail_gateway.delivery"]
    assert "injected=true" in line and "outcome=refused" in line and "smtp_code=550" in line
    state = client.get("/v1/outbox/chaos").json
    assert [(r["recipients"], r["reply"]) for r in state["recent"]] == [(["nobody@example.com"], "550 5.1.1")]


def test_percent_fails_exactly_that_share_of_sends_in_order(make_settings) -> None:
    client = create_app(make_settings(mail_backend="memory")).test_client()
    switch(client, enabled=True, reply="451", percent=25)
    statuses = [send(client).status_code for _ in range(8)]
    assert statuses == [202, 202, 202, 503, 202, 202, 202, 503]
    switch(client, enabled=True, reply="451", percent=50)  # a change restarts the count
    assert [send(client).status_code for _ in range(4)] == [202, 503, 202, 503]


@pytest.mark.parametrize("pattern", ["*@bounce.example.com", "/^(a|b)@bounce\\.example\\.com$/"])
def test_only_sends_to_matching_recipients_fail(pattern, make_settings) -> None:
    client = create_app(make_settings(mail_backend="memory")).test_client()
    switch(client, enabled=True, reply="552", recipients=pattern)
    assert send(client, "A@Bounce.example.com").status_code == 502
    assert send(client, "friend@example.com").status_code == 202
    assert client.get("/v1/outbox").json["total"] == 1


def test_a_delay_holds_each_matching_send_back(make_settings) -> None:
    client = create_app(make_settings(mail_backend="memory")).test_client()
    switch(client, enabled=True, reply=None, delay_ms=300, recipients="slow@example.com")
    started = time.monotonic()
    assert send(client, "slow@example.com").status_code == 202
    assert time.monotonic() - started >= 0.3
    assert switch(client)["enabled"] is False  # an empty body turns it off


def test_the_environment_variable_turns_it_on_for_the_console_and_file_backends(make_settings, tmp_path) -> None:
    for backend, extra in (("console", {"mail_console_keep": True}), ("file", {"mail_file_path": tmp_path})):
        app = create_app(make_settings(mail_backend=backend, gateway_chaos="reply=421; percent=100", **extra))
        assert send(app.test_client()).json["type"].endswith("delivery-deferred")


@pytest.mark.parametrize("value, named", [("reply=418", "reply"), ("percent=many", "percent"),
                                           ("colour=red", "colour"), ("recipients=/(/", "recipients")])
def test_a_malformed_environment_variable_stops_start_up_naming_it(value, named, make_settings) -> None:
    with pytest.raises(ConfigurationError, match="GATEWAY_CHAOS") as raised:
        create_app(make_settings(mail_backend="memory", gateway_chaos=value))
    assert named in str(raised.value) and raised.value.variable == "GATEWAY_CHAOS"


def test_refused_at_start_up_in_production_and_with_the_smtp_backend(make_settings, smtp_server) -> None:
    with pytest.raises(ConfigurationError, match="production"):
        create_app(make_settings(gateway_env="production", mail_backend="memory", gateway_api_keys=KEY,
                                 gateway_chaos="reply=451"))
    with pytest.raises(ConfigurationError, match="MAIL_BACKEND is smtp"):
        create_app(make_settings(**smtp_server.settings(), gateway_chaos="reply=451"))


def test_the_api_refuses_to_turn_it_on_in_production(make_settings) -> None:
    app = create_app(make_settings(gateway_env="production", mail_backend="memory", gateway_api_keys=KEY))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {KEY}"}
    refused = client.put("/v1/outbox/chaos", json={"enabled": True}, headers=headers)
    assert refused.status_code == 409 and refused.json["type"].endswith("chaos-not-allowed")
    assert "production" in refused.json["detail"]
    assert client.get("/v1/outbox/chaos", headers=headers).json["available"] is False
    assert client.get("/v1/outbox/chaos").status_code == 401


@pytest.mark.parametrize("body, field", [({"enabled": True, "percent": 150}, "percent"),
                                          ({"enabled": True, "reply": "500"}, "reply"),
                                          ({"enabled": True, "recipients": "/[/"}, "recipients"),
                                          ({"enabled": True, "sometimes": 1}, "sometimes")])
def test_an_invalid_switch_is_refused_naming_the_field(body, field, make_settings) -> None:
    client = create_app(make_settings(mail_backend="memory")).test_client()
    refused = client.put("/v1/outbox/chaos", json=body)
    assert refused.status_code == 422 and refused.mimetype == "application/problem+json"
    assert [e["field"] for e in refused.json["errors"]] == [field]
    assert client.get("/v1/outbox/chaos").json["enabled"] is False


def test_the_page_route_needs_the_pages_login_when_keys_are_set(make_settings) -> None:
    client = create_app(make_settings(mail_backend="memory", gateway_api_keys=KEY)).test_client()
    assert client.get("/outbox/chaos").status_code == 401
    assert client.get("/outbox/chaos", headers={"Authorization": f"Bearer {KEY}"}).json["backend"] == "memory"
    cross_site = client.put("/outbox/chaos", json={"enabled": True}, headers={
        "Authorization": f"Bearer {KEY}", "Sec-Fetch-Site": "cross-site"})
    assert cross_site.status_code == 403


def test_the_queue_retries_an_injected_4xx_and_bounces_an_injected_5xx(make_settings, queued_apps) -> None:
    queued = queued_app(make_settings, mail_backend="memory", gateway_chaos="reply=451")
    queued_apps.append(queued)
    answer = queued.send()
    assert queued.wait_status(answer["id"], "deferred")["recipients"][0]["code"] == 451
    switch(queued.client)  # off: the next attempt is delivered
    found = queued.wait_status(answer["id"], "delivered")
    # The worker may retry once more before the switch is turned off: every attempt before the last is deferred.
    events = [e["type"] for e in found["events"]]
    assert len(events) >= 2 and set(events[:-1]) == {"deferred"} and events[-1] == "delivered"
    switch(queued.client, enabled=True, reply="550 5.1.1")
    bounced = queued.wait_status(queued.send()["id"], "bounced")
    assert bounced["recipients"][0]["code"] == 550 and bounced["recipients"][0]["attempts"] == 1
    switch(queued.client, enabled=True, reply="552")
    failed = queued.wait_status(queued.send()["id"], "bounced")
    assert failed["recipients"][0]["code"] == 552 and failed["recipients"][0]["attempts"] == 1
