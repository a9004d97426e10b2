"""Queued delivery against real aiosmtpd upstreams: accept at once, keep, retry, report per recipient; on every
store (``store_url``: SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest
from api_helpers import assert_problem
from ingress_support import Upstream, wait_until
from queue_support import MESSAGE, Queued, queued_app
from smtp_server import HOST, FaultHandler, free_port

from mail_gateway import create_app


class Started(list):
    store_url: str


@pytest.fixture
def started(store_url) -> Iterator[Started]:
    apps = Started()
    apps.store_url = store_url
    yield apps
    for queued in apps:
        queued.stop()


def run(started: Started, make_settings, **values) -> Queued:
    queued = queued_app(make_settings, gateway_store_url=started.store_url, **values)
    started.append(queued)
    return queued


def test_a_message_is_answered_queued_then_delivered_and_reported(started, make_settings, smtp_server) -> None:
    queued = run(started, make_settings, **smtp_server.queued_settings())
    answer = queued.send({**MESSAGE, "to": ["a@example.com", "b@example.com"]})
    assert answer["status"] == "queued" and answer["id"] and answer["message_id"].startswith("<")
    assert answer["recipients"] == [{"email": "a@example.com", "status": "queued"},
                                    {"email": "b@example.com", "status": "queued"}]
    found = queued.wait_status(answer["id"], "delivered")
    assert [r["status"] for r in found["recipients"]] == ["delivered", "delivered"]
    assert all(r["attempts"] == 1 and r["code"] == 250 for r in found["recipients"])
    assert {e["type"] for e in found["events"]} == {"delivered"} and found["events"][0]["upstream"]
    assert len(smtp_server.messages) == 1 and smtp_server.messages[0].rcpt_tos == ["a@example.com", "b@example.com"]


def test_an_upstream_that_is_down_then_up_gets_the_message(started, make_settings) -> None:
    port = free_port()
    queued = run(started, make_settings, mail_backend="smtp", mail_server=HOST, mail_port=port, mail_timeout=2)
    answer = queued.send()
    deferred = queued.wait_status(answer["id"], "deferred")
    assert deferred["recipients"][0]["next_attempt_at"] and deferred["recipients"][0]["reason"]
    upstream = Upstream(port)
    try:
        queued.wait_status(answer["id"], "delivered")
        assert len(upstream.handler.messages) == 1
    finally:
        upstream.stop()


def test_451_then_250_is_deferred_then_delivered(started, make_settings, smtp_server_factory) -> None:
    server = smtp_server_factory(FaultHandler(data_reply="451 4.3.0 slow down", faults_left=1))
    queued = run(started, make_settings, **server.queued_settings())
    found = queued.wait_status(queued.send()["id"], "delivered")
    assert [(e["type"], e["code"]) for e in found["events"]] == [("deferred", 451), ("delivered", 250)]
    assert found["recipients"][0]["attempts"] == 2 and len(server.messages) == 1


def test_550_bounces_without_retry(started, make_settings, smtp_server_factory) -> None:
    server = smtp_server_factory(FaultHandler(rcpt_replies={"friend@example.com": "550 5.1.1 no such user"}))
    queued = run(started, make_settings, **server.queued_settings())
    found = queued.wait_status(queued.send()["id"], "bounced")
    assert found["recipients"][0]["code"] == 550 and "no such user" in found["recipients"][0]["reason"]
    time.sleep(0.3)  # several backoffs: still one attempt
    assert queued.status(found["id"])["recipients"][0]["attempts"] == 1


def test_a_drop_after_the_final_dot_is_retried_and_recorded_unknown(started, make_settings,
                                                                    smtp_server_factory) -> None:
    handler = FaultHandler(disconnect_after_data=True)
    server = smtp_server_factory(handler)
    queued = run(started, make_settings, **server.queued_settings())
    answer = queued.send()
    wait_until(lambda: len(server.messages) >= 1, "the first copy arrived")
    handler.disconnect_after_data = False
    found = queued.wait_status(answer["id"], "delivered")
    assert [e["type"] for e in found["events"]][0] == "unknown"
    assert len(server.messages) >= 2  # a duplicate rather than a loss (RFC 5321, 6.1)


def test_a_message_still_undelivered_at_the_end_of_its_lifetime_fails(started, make_settings) -> None:
    queued = run(started, make_settings, mail_backend="smtp", mail_server=HOST, mail_port=free_port(),
                 gateway_queue_lifetime=0.6)
    found = queued.wait_status(queued.send()["id"], "failed")
    assert "GATEWAY_QUEUE_LIFETIME" in found["recipients"][0]["reason"]
    assert found["recipients"][0]["attempts"] >= 2


def test_scheduled_send_waits_for_its_time(started, make_settings, smtp_server) -> None:
    queued = run(started, make_settings, **smtp_server.queued_settings())
    at = time.time() + 1.5
    send_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}+00:00"
    answer = queued.send({**MESSAGE, "send_at": send_at})
    assert answer["status"] == "scheduled" and answer["recipients"][0]["status"] == "scheduled"
    assert queued.status(answer["id"])["send_at"].startswith(send_at[:19])
    time.sleep(0.5)
    assert queued.status(answer["id"])["status"] == "scheduled" and smtp_server.messages == []
    queued.wait_status(answer["id"], "delivered")
    assert time.time() >= at and len(smtp_server.messages) == 1


def test_send_at_too_far_ahead_or_in_direct_mode_is_422(started, make_settings) -> None:
    queued = run(started, make_settings, mail_backend="memory", gateway_queue_max_schedule=60)
    body = assert_problem(queued.client.post("/v1/messages", json={**MESSAGE, "send_at": "2999-01-01T00:00:00Z"}),
                          422, "invalid-message")
    assert body["errors"][0]["field"] == "send_at" and "GATEWAY_QUEUE_MAX_SCHEDULE" in body["errors"][0]["message"]
    direct = create_app(make_settings(mail_backend="memory")).test_client()
    body = assert_problem(direct.post("/v1/messages", json={**MESSAGE, "send_at": "2030-01-01T00:00:00+01:00"}), 422)
    assert "queued delivery" in body["errors"][0]["message"]


@pytest.mark.parametrize("send_at", ["0001-01-01T00:00:00+00:01", "0001-01-01T09:00:00+14:00"])
def test_a_send_at_before_the_year_1_in_utc_is_422_and_the_listing_still_answers(started, make_settings,
                                                                                  send_at) -> None:
    # In the year 0 in UTC: such a message was stored, and every listing that showed it answered 500, the admin's too.
    queued = run(started, make_settings, mail_backend="memory")
    raw = {"mail_from": "app@example.com", "rcpt_to": ["friend@example.com"], "send_at": send_at,
           "data": base64.b64encode(b"Subject: Hi\r\n\r\nHello\r\n").decode()}
    for path, payload in (("/v1/messages", {**MESSAGE, "send_at": send_at}), ("/v1/messages/raw", raw)):
        body = assert_problem(queued.client.post(path, json=payload), 422, "invalid-message")
        assert [e["field"] for e in body["errors"]] == ["send_at"], body
        assert "before 0001-01-01T00:00:00Z" in body["errors"][0]["message"], body
    batch = queued.client.post("/v1/messages/batch", json={"messages": [{**MESSAGE, "send_at": send_at}]})
    [result] = batch.get_json()["results"]
    assert result["status"] == "failed" and result["error"]["errors"][0]["field"] == "send_at", result
    listing = queued.client.get("/v1/messages")
    assert listing.status_code == 200 and listing.get_json()["total"] == 0


@pytest.mark.parametrize("form", [int, float, lambda at: str(int(at)), str, lambda at: True],
                         ids=["int", "float", "digits", "decimal", "bool"])
def test_send_at_as_a_bare_number_is_422_naming_the_expected_form(started, make_settings, form) -> None:
    """A number, a minute ahead as Unix time, was taken as one; the API takes RFC 3339 with an offset."""
    queued = run(started, make_settings, mail_backend="memory")
    send_at = form(time.time() + 60)
    raw = {"mail_from": "app@example.com", "rcpt_to": ["friend@example.com"], "send_at": send_at,
           "data": base64.b64encode(b"Subject: Hi\r\n\r\nHello\r\n").decode()}
    for path, payload in (("/v1/messages", {**MESSAGE, "send_at": send_at}), ("/v1/messages/raw", raw)):
        body = assert_problem(queued.client.post(path, json=payload), 422, "invalid-message")
        assert [e["field"] for e in body["errors"]] == ["send_at"], body
        assert "RFC 3339" in body["errors"][0]["message"] and "T09:00:00+01:00" in body["errors"][0]["message"]
    batch = queued.client.post("/v1/messages/batch", json={"messages": [{**MESSAGE, "send_at": send_at}]})
    [result] = batch.get_json()["results"]
    assert result["status"] == "failed" and result["error"]["errors"][0]["field"] == "send_at", result
    assert queued.client.get("/v1/messages").get_json()["total"] == 0


def test_cancel_retry_and_unknown_ids(started, make_settings, smtp_server) -> None:
    queued = run(started, make_settings, **smtp_server.queued_settings())
    answer = queued.send({**MESSAGE, "send_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))})
    canceled = queued.client.delete(f"/v1/messages/{answer['id']}")
    assert canceled.status_code == 200 and canceled.get_json()["status"] == "canceled"
    assert canceled.get_json()["recipients"][0]["status"] == "canceled"
    assert_problem(queued.client.delete(f"/v1/messages/{answer['id']}"), 409, "nothing-pending")
    assert_problem(queued.client.post(f"/v1/messages/{answer['id']}/retry"), 409, "nothing-pending")
    assert_problem(queued.client.get("/v1/messages/nope"), 404, "no-such-message")
    later = queued.send({**MESSAGE, "send_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))})
    assert queued.client.post(f"/v1/messages/{later['id']}/retry").status_code == 202  # due now
    queued.wait_status(later["id"], "delivered")
    assert len(smtp_server.messages) == 1
    listed = queued.client.get("/v1/messages?status=canceled").get_json()
    assert [m["id"] for m in listed["messages"]] == [answer["id"]] and listed["total"] == 1
    assert_problem(queued.client.get("/v1/messages?limit=0"), 400, "invalid-query")


# Each out of range, or not a whole number (superscript two, more digits than int() reads), and each answered
# before the store sees it: 2**63 overflowed SQLite's integer into a 500.
BAD_INTEGERS = [("start", "9223372036854775808"), ("start", "-1"), ("start", "\u00b2"), ("start", "1" * 5000),
                ("limit", "0"), ("limit", "1001"), ("limit", "18446744073709551616"), ("limit", "abc")]



@pytest.mark.parametrize("odd", ["%00", "a%00b", "%C3%A9", "%E2%80%AE", "%F0%9F%98%80" * 50, "%0A", "%7F"])
def test_an_id_with_a_character_no_id_has_is_no_such_message_on_every_route(started, make_settings, odd) -> None:
    # PostgreSQL takes no NUL in text: the id reached it, and a 503 said the store had failed, retry later.
    queued = run(started, make_settings, workers=False)
    message_id = queued.send({**MESSAGE, "send_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                  time.gmtime(time.time() + 600))})["id"]
    client = queued.client
    for response in (client.get(f"/v1/messages/{odd}"), client.get(f"/v1/messages/{message_id}{odd}"),
                     client.post(f"/v1/messages/{message_id}{odd}/retry"), client.delete(f"/v1/messages/{odd}"),
                     client.get(f"/v1/inbound/{odd}/raw")):
        assert_problem(response, 404, "no-such-message")
    assert client.get("/readyz").status_code == 200
    assert queued.status(message_id)["status"] == "scheduled"

def test_integer_query_parameters_out_of_range_are_400_naming_the_parameter_and_its_range(
        started, make_settings) -> None:
    queued = run(started, make_settings, mail_backend="memory")
    for name, value in BAD_INTEGERS:
        body = assert_problem(queued.client.get("/v1/messages", query_string={name: value}), 400, "invalid-query")
        [error] = body["errors"]
        bounds = "from 0 to 1000000000" if name == "start" else "from 1 to 1000"
        assert error["field"] == name and bounds in error["message"], (value[:20], body)
        assert name in body["detail"]
    assert queued.client.get("/v1/messages?start=1000000000&limit=1000").get_json()["messages"] == []


def test_a_query_parameter_given_twice_is_refused_not_half_read(started, make_settings) -> None:
    queued = run(started, make_settings, mail_backend="memory")
    # Scheduled an hour ahead, so its status stays the same however fast the workers are.
    queued.send({**MESSAGE, "send_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))})
    for query in ("status=delivered&status=scheduled", "limit=1&limit=2", "start=0&start=1"):
        body = assert_problem(queued.client.get(f"/v1/messages?{query}"), 400, "invalid-query")
        name = query.partition("=")[0]
        assert body["errors"] == [{"field": name, "message": "given more than once; give it once"}], body
    assert queued.client.get("/v1/messages?status=scheduled").get_json()["total"] == 1


def test_direct_mode_has_no_status_routes(make_settings) -> None:
    client = create_app(make_settings(mail_backend="memory")).test_client()
    for response in (client.get("/v1/messages/x"), client.get("/v1/messages"), client.delete("/v1/messages/x"),
                     client.post("/v1/messages/x/retry")):
        assert "GATEWAY_DELIVERY" in assert_problem(response, 404, "queued-delivery-off")["detail"]


def test_a_batch_is_stored_in_one_go_with_a_result_per_message(started, make_settings, smtp_server) -> None:
    queued = run(started, make_settings, **smtp_server.queued_settings())
    response = queued.client.post("/v1/messages/batch", json={"messages": [MESSAGE, {**MESSAGE, "to": []}, MESSAGE]})
    results = response.get_json()["results"]
    assert response.status_code == 200 and [r["status"] for r in results] == ["queued", "failed", "queued"]
    for result in (results[0], results[2]):
        queued.wait_status(result["id"], "delivered")
    assert len(smtp_server.messages) == 2


def test_a_keyed_queued_request_is_stored_once_and_replayed(started, make_settings, smtp_server) -> None:
    queued = run(started, make_settings, **smtp_server.queued_settings())
    first = queued.send(**{"Idempotency-Key": "order-1"})
    again = queued.client.post("/v1/messages", json=MESSAGE, headers={"Idempotency-Key": "order-1"})
    assert again.get_json() == first and again.headers["Idempotent-Replayed"] == "true"
    queued.wait_status(first["id"], "delivered")
    assert queued.client.get("/v1/messages").get_json()["total"] == 1 and len(smtp_server.messages) == 1


def test_the_rate_limit_holds_the_rest_in_the_queue(started, make_settings, smtp_server) -> None:
    queued = run(started, make_settings, **smtp_server.queued_settings(), mail_rate_limit=5)
    ids = [queued.send()["id"] for _ in range(6)]
    started_at = time.monotonic()
    for message_id in ids:
        queued.wait_status(message_id, "delivered")
    assert time.monotonic() - started_at >= 0.8  # 6 messages at 5 a second: at least a second after the first


def test_metrics_count_messages_and_requests_behind_the_api_key(started, make_settings, smtp_server) -> None:
    queued = run(started, make_settings, **smtp_server.queued_settings(), gateway_api_keys="metrics-key")
    auth = {"Authorization": "Bearer metrics-key"}
    answer = queued.client.post("/v1/messages", json=MESSAGE, headers=auth).get_json()
    wait_until(lambda: queued.client.get(f"/v1/messages/{answer['id']}", headers=auth).get_json()["status"]
               == "delivered", "delivered")
    assert_problem(queued.client.get("/metrics"), 401)
    text = queued.client.get("/metrics", headers=auth).get_data(as_text=True)
    assert 'mail_gateway_messages{status="delivered"} 1.0' in text
    assert "mail_gateway_oldest_pending_age_seconds 0.0" in text
    assert 'mail_gateway_deliveries_total{outcome="delivered"' in text
    assert 'mail_gateway_http_requests_total{method="POST",route="/v1/messages",status="202"}' in text
    assert "mail_gateway_http_request_duration_seconds_bucket" in text


def test_a_cancel_while_a_worker_delivers_is_refused_as_too_late_never_canceled_and_sent(
        started, make_settings, smtp_server_factory) -> None:
    # The upstream holds the worker at DATA until the test has asked to cancel: the attempt is certainly in
    # flight when the cancel arrives. It used to answer 200 "canceled" and the message was delivered as well.
    upstream = smtp_server_factory(FaultHandler(stall_at="DATA"))
    queued = run(started, make_settings, **upstream.queued_settings(), gateway_queue_lease=30.0)
    answer = queued.send()
    wait_until(lambda: upstream.handler.data_commands == 1, "the worker is sending the message")
    refused = queued.client.delete(f"/v1/messages/{answer['id']}")
    assert_problem(refused, 409, "delivery-in-flight")
    assert refused.headers["Retry-After"] == "1"
    assert queued.status(answer["id"])["recipients"][0]["status"] == "queued"
    upstream.handler.released.set()
    assert queued.wait_status(answer["id"], "delivered")["recipients"][0]["status"] == "delivered"
    assert len(upstream.messages) == 1
    assert_problem(queued.client.delete(f"/v1/messages/{answer['id']}"), 409, "nothing-pending")
