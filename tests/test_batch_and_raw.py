"""POST /v1/messages/batch and POST /v1/messages/raw, against the memory backend and a real SMTP server."""

from __future__ import annotations

import base64
import email
import email.policy

import pytest
from api_helpers import HELLO, assert_problem, fields, outbox
from smtp_server import FaultHandler

from mail_gateway import create_app


def message(n: int, **change) -> dict:
    return {**HELLO, "subject": f"Message {n}", "to": [f"user{n}@example.com"], **change}


@pytest.mark.parametrize("pool_size", [1, 2])
def test_a_batch_with_one_invalid_message_delivers_the_others_once_over_pooled_connections(
        make_settings, smtp_server, pool_size) -> None:
    app = create_app(make_settings(**smtp_server.settings(mail_pool_size=pool_size)))
    batch = [message(0), message(1, to=["not-an-address"]), message(2), message(3)]
    response = app.test_client().post("/v1/messages/batch", json={"messages": batch})
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [(0, "accepted"), (1, "failed"), (2, "accepted"),
                                                            (3, "accepted")]
    error = results[1]["error"]
    assert error["status"] == 422 and error["type"] == "urn:mail-gateway:problem:invalid-message"
    assert "to[0]" in fields(error)
    received = smtp_server.messages
    assert sorted(r.rcpt_tos[0] for r in received) == ["user0@example.com", "user2@example.com",
                                                       "user3@example.com"]
    by_subject = {email.message_from_bytes(r.data, policy=email.policy.default)["Subject"]: r for r in received}
    for result in (results[0], results[2], results[3]):
        parsed = email.message_from_bytes(by_subject[f"Message {result['index']}"].data,
                                          policy=email.policy.default)
        assert parsed["Message-ID"] == result["message_id"]
        assert result["recipients"] == [{"email": f"user{result['index']}@example.com", "status": "accepted"}]
    # Not one connection per message: the batch shares at most MAIL_POOL_SIZE connections.
    assert 1 <= len({r.peer for r in received}) <= pool_size


def test_a_batch_reports_each_delivery_failure_in_place(make_settings, smtp_server_factory) -> None:
    server = smtp_server_factory(FaultHandler(rcpt_replies={"user1@example.com": "550 5.1.1 unknown user",
                                                            "user2@example.com": "451 4.3.0 try later"}))
    app = create_app(make_settings(**server.settings()))
    batch = [message(0), message(1), message(2), message(3)]
    results = app.test_client().post("/v1/messages/batch", json={"messages": batch}).get_json()["results"]
    assert [r["status"] for r in results] == ["accepted", "failed", "failed", "accepted"]
    assert results[1]["error"]["status"] == 422 and results[1]["error"]["smtp_code"] == 550
    assert results[2]["error"]["status"] == 503
    assert results[2]["error"]["type"] == "urn:mail-gateway:problem:delivery-deferred"
    assert sorted(r.rcpt_tos[0] for r in server.messages) == ["user0@example.com", "user3@example.com"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"messages": []}, "messages"), ({}, "messages"), ({"messages": "x"}, "messages"), ([HELLO], "body"),
     ({"messages": [HELLO], "extra": 1}, "extra")],
)
def test_a_malformed_batch_is_422(make_settings, body, field) -> None:
    app = create_app(make_settings(mail_backend="memory"))
    problem = assert_problem(app.test_client().post("/v1/messages/batch", json=body), 422)
    assert field in fields(problem)
    assert outbox(app) == []


def test_a_batch_larger_than_gateway_max_batch_is_422(make_settings) -> None:
    app = create_app(make_settings(mail_backend="memory", gateway_max_batch=2))
    response = app.test_client().post("/v1/messages/batch", json={"messages": [message(n) for n in range(3)]})
    problem = assert_problem(response, 422)
    assert "GATEWAY_MAX_BATCH" in problem["errors"][0]["message"]
    assert outbox(app) == []


RAW_WITHOUT_IDS = (b"From: App <app@example.com>\r\nTo: friend@example.com\r\nSubject: Raw\r\n"
                   b"X-Custom:  kept   as is\r\n\r\nBody line\r\n.leading dot\r\n\xff binary-ish\r\n")


def test_raw_arrives_unchanged_apart_from_an_added_message_id_and_date(make_settings, smtp_server) -> None:
    app = create_app(make_settings(**smtp_server.settings()))
    payload = {"mail_from": "bounce@example.com", "rcpt_to": ["friend@example.com", "other@example.com"],
               "data": base64.b64encode(RAW_WITHOUT_IDS).decode()}
    response = app.test_client().post("/v1/messages/raw", json=payload)
    assert response.status_code == 202
    body = response.get_json()
    [received] = smtp_server.messages
    assert received.mail_from == "bounce@example.com"
    assert received.rcpt_tos == ["friend@example.com", "other@example.com"]
    added, _, rest = received.data.partition(b"From: ")
    assert b"From: " + rest == RAW_WITHOUT_IDS
    parsed = email.message_from_bytes(received.data, policy=email.policy.default)
    assert parsed["Message-ID"] == body["message_id"] and parsed["Date"]
    assert sorted(added.split(b"\r\n")[:2]) == sorted([b"Message-ID: " + body["message_id"].encode(),
                                                       b"Date: " + parsed["Date"].encode()])


def test_raw_with_its_own_message_id_and_date_is_byte_identical(make_settings) -> None:
    app = create_app(make_settings(mail_backend="memory"))
    data = b"Message-ID: <own@example.com>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n" + RAW_WITHOUT_IDS
    payload = {"mail_from": "app@example.com", "rcpt_to": "friend@example.com",
               "data": base64.b64encode(data).decode()}
    response = app.test_client().post("/v1/messages/raw", json=payload)
    assert response.status_code == 202 and response.get_json()["message_id"] == "<own@example.com>"
    [stored] = outbox(app)
    assert stored.data == data


@pytest.mark.parametrize(
    ("change", "field"),
    [({"data": "not base64"}, "data"), ({"data": ""}, "data"), ({"rcpt_to": []}, "rcpt_to"),
     ({"rcpt_to": ["x"]}, "rcpt_to[0]"), ({"mail_from": "a@b\r\nRCPT TO:<x@y>"}, "mail_from"),
     ({"mail_from": None}, "mail_from"), ({"extra": 1}, "extra")],
)
def test_invalid_raw_requests_are_422(make_settings, change, field) -> None:
    app = create_app(make_settings(mail_backend="memory"))
    payload = {"mail_from": "app@example.com", "rcpt_to": ["friend@example.com"], "data": "QUJD", **change}
    payload = {k: v for k, v in payload.items() if v is not None}
    problem = assert_problem(app.test_client().post("/v1/messages/raw", json=payload), 422)
    assert field in fields(problem)
    assert outbox(app) == []


def test_raw_delivery_failures_are_problems(make_settings, smtp_server_factory) -> None:
    server = smtp_server_factory(FaultHandler(data_reply="554 5.6.0 rejected"))
    app = create_app(make_settings(**server.settings()))
    payload = {"mail_from": "app@example.com", "rcpt_to": ["friend@example.com"],
               "data": base64.b64encode(RAW_WITHOUT_IDS).decode()}
    assert_problem(app.test_client().post("/v1/messages/raw", json=payload), 502, "upstream-refused")
