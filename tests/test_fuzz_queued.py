"""schemathesis against the OpenAPI document of a gateway in queued mode: the send routes store what they accept
and answer as the document says (no 5xx, documented statuses and bodies), what they store carries no header its
fields did not ask for, and the status routes hold up under generated queries and ids."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import assume, given
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, positive_data_acceptance
from test_fuzz import API_KEY, FUZZ_CONFIG, FUZZ_SETTINGS, assert_no_injected_header, make_sendable

from mail_gateway import MailGateway, create_app
from mail_gateway.store import claims

SEND_ROUTES = ("/v1/messages", "/v1/messages/batch", "/v1/messages/raw")
CASES = [(path, "POST", mode) for path in SEND_ROUTES for mode in ("positive", "negative", "sendable")] + [
    ("/v1/messages", "GET", "positive"), ("/v1/messages", "GET", "negative"),
    ("/v1/messages/{message_id}", "GET", "positive"), ("/v1/messages/{message_id}", "DELETE", "positive"),
    ("/v1/messages/{message_id}/retry", "POST", "positive")]


@pytest.fixture
def queued_app(make_settings):
    # No workers: what is accepted stays in the store, where the test reads it back.
    return create_app(make_settings(mail_backend="memory", gateway_delivery="queued", gateway_api_keys=API_KEY,
                                    gateway_max_message_bytes=64 * 1024, gateway_store_url="sqlite:///fuzz.sqlite3"))


def stored_body(app, message_id: str) -> bytes:
    store = MailGateway.state(app).store
    data = store.read(lambda conn: claims.body(conn, message_id))
    assert data is not None, message_id
    return data


@pytest.mark.parametrize(("path", "method", "mode"), CASES, ids=[f"{m} {p} {g}" for p, m, g in CASES])
def test_queued_routes_survive_generated_requests(queued_app, path, method, mode) -> None:
    operation = schemathesis.openapi.from_wsgi("/openapi.json", queued_app, config=FUZZ_CONFIG)[path][method]
    if mode == "sendable":
        strategy = operation.as_strategy(generation_mode=GenerationMode.POSITIVE).map(make_sendable)
    else:
        strategy = operation.as_strategy(generation_mode=GenerationMode(mode))
    statuses: dict[int, int] = {}
    excluded = [positive_data_acceptance] + ([negative_data_rejection] if path == "/v1/messages/batch" else [])

    @FUZZ_SETTINGS
    @given(case=strategy)
    def run(case) -> None:
        assume(not (isinstance(case.query, dict) and "" in case.query))  # dropped before sending: see test_fuzz.py
        response = case.call_and_validate(headers={"Authorization": f"Bearer {API_KEY}"}, excluded_checks=excluded)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500 and "Traceback" not in response.text
        replayed = "idempotent-replayed" in {k.lower() for k in response.headers}
        if path == "/v1/messages" and method == "POST" and response.status_code == 202 and not replayed:
            answer = response.json()
            assert answer["status"] in ("queued", "scheduled")
            assert_no_injected_header(stored_body(queued_app, answer["id"]), case.body)

    run()
    print(f"\n{method} {path} ({mode}, queued): {sum(statuses.values())} requests, statuses {sorted(statuses.items())}")
    assert sum(statuses.values()) >= 1
    if mode == "sendable" and path == "/v1/messages":
        assert statuses.get(202), statuses  # generated messages really were stored and checked
