"""Idempotency keys: replay, conflicts, concurrent retries from threads and from two app instances; on every
store (``store_url``: SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from api_helpers import HELLO, assert_problem, outbox, parsed
from ingress_support import wait_until
from smtp_server import FaultHandler, RecordingHandler
from sqlalchemy import select

from mail_gateway import create_app
from mail_gateway.assembly import build_sender
from mail_gateway.http.idempotency import STORE_KEY, request_fingerprint, scoped_key
from mail_gateway.http.keyring import Keyring
from mail_gateway.store import keys, messages
from mail_gateway.store.database import Store
from mail_gateway.store.keys import StoredResponse
from mail_gateway.store.schema import request_outcomes


@pytest.fixture
def app(make_settings, store_url):
    return create_app(make_settings(mail_backend="memory", gateway_idempotency_url=store_url))


def post(client, payload=HELLO, key="key-1", path="/v1/messages"):
    return client.post(path, json=payload, headers={"Idempotency-Key": key})


def test_a_retry_with_the_same_key_and_body_replays_without_sending(app) -> None:
    client = app.test_client()
    first = post(client)
    again = post(client, payload=dict(reversed(list(HELLO.items()))))  # same JSON, other key order
    assert first.status_code == again.status_code == 202
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert len(outbox(app)) == 1


def test_the_same_key_with_another_body_or_route_is_409(app) -> None:
    client = app.test_client()
    assert post(client).status_code == 202
    assert_problem(post(client, payload={**HELLO, "subject": "Other"}), 409, "idempotency-key-reused")
    assert_problem(post(client, payload={"messages": [HELLO]}, path="/v1/messages/batch"), 409,
                   "idempotency-key-reused")
    assert len(outbox(app)) == 1


def test_different_keys_send_separately_and_no_key_never_replays(app) -> None:
    client = app.test_client()
    assert post(client, key="a").status_code == post(client, key="b").status_code == 202
    assert client.post("/v1/messages", json=HELLO).status_code == 202
    assert client.post("/v1/messages", json=HELLO).status_code == 202
    assert len(outbox(app)) == 4


@pytest.mark.parametrize("key", ["", " leading", "trailing ", "x" * 256, "tab\tinside", "ünïcode"])
def test_an_invalid_key_is_400(app, key) -> None:
    body = assert_problem(app.test_client().post("/v1/messages", json=HELLO,
                                                 headers={"Idempotency-Key": key.encode().decode("latin-1")}),
                          400, "invalid-idempotency-key")
    assert "Idempotency-Key" in body["detail"] and [e["field"] for e in body["errors"]] == ["Idempotency-Key"]
    assert outbox(app) == []


def test_a_lone_surrogate_in_a_keyed_body_is_the_same_422_as_without_a_key(app) -> None:
    # The fingerprint encoded the body's JSON strictly, before the view could refuse it: a 500.
    client = app.test_client()
    body = b'{"from": "a@example.com", "to": "b@example.com", "subject": "\\ud800", "text": "t"}'
    unkeyed = assert_problem(client.post("/v1/messages", data=body, content_type="application/json"), 422)
    keyed = assert_problem(client.post("/v1/messages", data=body, content_type="application/json",
                                       headers={"Idempotency-Key": "k1"}), 422)
    assert keyed["errors"] == unkeyed["errors"] and [e["field"] for e in keyed["errors"]] == ["subject"]
    assert outbox(app) == []


def test_an_invalid_message_does_not_use_up_the_key(app) -> None:
    client = app.test_client()
    assert_problem(post(client, payload={**HELLO, "to": []}), 422)
    assert post(client, payload={**HELLO, "to": []}).status_code == 422  # not a replay: still validated
    assert post(client).status_code == 202  # the key was released, so another body may use it
    assert len(outbox(app)) == 1


def test_concurrent_retries_from_threads_send_once(app) -> None:
    def attempt(_: int):
        response = post(app.test_client(), key="concurrent")
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(24)))
    assert len(outbox(app)) == 1
    accepted = [body for status, body in outcomes if status == 202]
    assert accepted and all(body == accepted[0] for body in accepted)
    assert {status for status, _ in outcomes} <= {202, 409}
    assert all(body["type"].endswith("idempotency-key-in-flight") for status, body in outcomes if status == 409)


def test_two_app_instances_share_the_store(make_settings, store_url) -> None:
    first, second = (create_app(make_settings(mail_backend="memory", gateway_idempotency_url=store_url))
                     for _ in range(2))

    def attempt(n: int):
        app = (first, second)[n % 2]
        response = post(app.test_client(), key="shared")
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(attempt, range(18)))
    assert len(outbox(first)) + len(outbox(second)) == 1
    accepted = [body for status, body in outcomes if status == 202]
    assert accepted and all(body == accepted[0] for body in accepted)
    # A third instance, as after a restart, replays it too.
    restarted = create_app(make_settings(mail_backend="memory", gateway_idempotency_url=store_url))
    replay = post(restarted.test_client(), key="shared")
    assert replay.get_json() == accepted[0] and outbox(restarted) == []


class StallingHandler(FaultHandler):
    """Holds the DATA reply until released, and says when the message has reached it."""

    def __init__(self) -> None:
        super().__init__(stall_at="DATA")
        self.reached = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.reached.set()
        return await super().handle_DATA(server, session, envelope)


def test_a_retry_while_the_first_is_in_flight_is_409(make_settings, smtp_server_factory, store_url) -> None:
    handler = StallingHandler()
    server = smtp_server_factory(handler)
    app = create_app(make_settings(**server.settings(), gateway_idempotency_url=store_url))
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(post, app.test_client())
        assert handler.reached.wait(10)
        assert_problem(post(app.test_client()), 409, "idempotency-key-in-flight")
        handler.released.set()
        assert first.result(timeout=10).status_code == 202
    assert post(app.test_client()).headers["Idempotent-Replayed"] == "true"
    assert len(server.messages) == 1


def test_a_transient_failure_frees_the_key_for_a_real_retry(make_settings, smtp_server_factory, store_url) -> None:
    handler = FaultHandler(data_reply="451 4.3.0 try later")
    server = smtp_server_factory(handler)
    client = create_app(make_settings(**server.settings(), gateway_idempotency_url=store_url)).test_client()
    assert_problem(post(client), 503, "delivery-deferred")
    handler.data_reply = None
    retry = post(client)
    assert retry.status_code == 202 and "Idempotent-Replayed" not in retry.headers
    assert len(server.messages) == 1


def test_an_unknown_outcome_is_replayed_never_resent(make_settings, smtp_server_factory, store_url) -> None:
    server = smtp_server_factory(FaultHandler(disconnect_after_data=True))
    client = create_app(make_settings(**server.settings(), gateway_idempotency_url=store_url)).test_client()
    first = assert_problem(post(client), 503, "delivery-outcome-unknown")
    retry = post(client)
    assert retry.status_code == 503 and retry.get_json() == first
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert len(server.messages) == 1


def test_batch_and_raw_routes_are_idempotent_too(app) -> None:
    client = app.test_client()
    batch = {"messages": [HELLO, {**HELLO, "subject": "Two"}]}
    first = post(client, payload=batch, key="batch", path="/v1/messages/batch")
    assert post(client, payload=batch, key="batch", path="/v1/messages/batch").get_json() == first.get_json()
    raw = {"mail_from": "app@example.com", "rcpt_to": ["friend@example.com"], "data": "U3ViamVjdDogaGkNCg0KaGkNCg=="}
    first = post(client, payload=raw, key="raw", path="/v1/messages/raw")
    assert post(client, payload=raw, key="raw", path="/v1/messages/raw").get_json() == first.get_json()
    assert len(outbox(app)) == 3


def test_keys_are_scoped_per_api_key(make_settings, store_url) -> None:
    app = create_app(make_settings(mail_backend="memory", gateway_idempotency_url=store_url,
                                   gateway_api_keys="alpha-key,beta-key"))
    client = app.test_client()
    for token in ("alpha-key", "beta-key"):
        response = client.post("/v1/messages", json=HELLO,
                               headers={"Idempotency-Key": "same", "Authorization": f"Bearer {token}"})
        assert response.status_code == 202 and "Idempotent-Replayed" not in response.headers
    assert len(outbox(app)) == 2


def test_the_store_expires_keys_after_the_ttl(tmp_path) -> None:
    now = [1000.0]
    store = Store(f"sqlite:///{tmp_path / 's.sqlite3'}").open()

    def begin(key: str, fingerprint: str) -> keys.Begun:
        return store.write(lambda c: keys.begin(c, key, fingerprint, mode="direct", now=now[0], lease=600, ttl=60))

    assert begin("k", "f1").conflict is None
    assert begin("k", "f1").conflict == "in-flight"
    store.write(lambda c: keys.finish(c, "k", StoredResponse(202, "application/json", b"{}")))
    assert begin("k", "f1").replay == StoredResponse(202, "application/json", b"{}")
    assert begin("k", "f2").conflict == "mismatch"
    now[0] += 61
    assert begin("k", "f2").conflict is None and begin("k", "f2").conflict == "in-flight"
    now[0] += 61
    assert begin("other", "f").conflict is None  # and "k", expired, is deleted on the way
    assert begin("k", "f3").conflict is None
    now[0] += 61
    assert store.write(lambda c: keys.purge_expired(c, now[0], 60)) == 2


def test_a_queued_request_whose_key_a_retry_took_over_writes_nothing_and_the_retry_is_kept(tmp_path) -> None:
    now = [1000.0]
    store = Store(f"sqlite:///{tmp_path / 's.sqlite3'}").open()
    keyring = Keyring(store, mode="queued", lease=10, clock=lambda: now[0])
    answer = StoredResponse(202, "application/json", b'{"id": "retry"}')
    first = keyring.begin("k", "f")
    now[0] += 11  # the first request is alive, but its renewals failed and its lease ran out
    retry = keyring.begin("k", "f")
    assert retry.conflict is None and retry.holder != first.holder
    with keyring.held("k", first.holder) as late:
        # What a queued request writes with its answer (its messages); here a mark that shows whether it went.
        late.join(lambda conn: keys.begin(conn, "written-by-the-late-request", "f", mode="queued", now=now[0],
                                          lease=10))
        assert late.finish(StoredResponse(202, "application/json", b'{"id": "late"}')) is False
    assert keyring.begin("written-by-the-late-request", "f").conflict is None  # never written: free
    with keyring.held("k", retry.holder) as keyed:
        assert keyed.finish(answer) is True
    assert keyring.begin("k", "f").replay == answer
    keyring.stop()
    store.close()


def test_an_unusable_store_path_fails_at_start_up(make_settings, tmp_path) -> None:
    from mail_gateway.errors import ConfigurationError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigurationError) as caught:
        create_app(make_settings(mail_backend="memory", gateway_idempotency_url=f"sqlite:///{blocker}/keys.db"))
    assert caught.value.variable == "GATEWAY_STORE_URL"


CLAIM = """
import sys, time
from mail_gateway.store import keys
from mail_gateway.store.database import Store
store = Store("sqlite:///" + sys.argv[1])
begun = store.write(lambda c: keys.begin(c, "shared-key", "same-body", mode="direct", now=time.time(), lease=60))
print("claimed" if begun.conflict is None and begun.replay is None else begun.conflict)
"""


def test_only_one_of_several_processes_claims_a_key(tmp_path) -> None:
    path = str(tmp_path / "keys.sqlite3")
    Store(f"sqlite:///{path}").open()  # created once, as at start-up
    processes = [subprocess.Popen([sys.executable, "-c", CLAIM, path], stdout=subprocess.PIPE, text=True,
                                  cwd=Path(__file__).parent.parent) for _ in range(6)]
    outcomes = sorted(process.communicate(timeout=60)[0].strip() for process in processes)
    assert outcomes == ["claimed"] + ["in-flight"] * 5


def test_after_a_crash_mid_send_a_retry_is_refused_not_sent_again(make_settings, store_url, tmp_path) -> None:
    crashed = create_app(make_settings(mail_backend="memory", gateway_idempotency_url=store_url))
    with crashed.test_request_context("/v1/messages", method="POST", json=HELLO,
                                      headers={"Idempotency-Key": "crash"}):
        # What the first request had done when the process died: the key claimed, the response never recorded.
        crashed.preprocess_request()  # the API key check, which names the client
        keyring = crashed.extensions[STORE_KEY]
        assert keyring.begin(scoped_key("crash"), request_fingerprint(HELLO)).conflict is None
    restarted = create_app(make_settings(mail_backend="memory", gateway_idempotency_url=store_url))
    assert_problem(post(restarted.test_client(), key="crash"), 409, "idempotency-key-in-flight")
    assert outbox(restarted) == []


def test_the_lease_renewer_ends_when_the_app_closes_its_store(make_settings, store_url) -> None:
    app = create_app(make_settings(mail_backend="memory", gateway_idempotency_url=store_url))
    assert post(app.test_client(), key="renewed").status_code == 202
    assert "idempotency-leases" in [thread.name for thread in threading.enumerate()]
    app.extensions[STORE_KEY].store.close()
    assert "idempotency-leases" not in [thread.name for thread in threading.enumerate()]


@dataclass
class HoldingHandler(RecordingHandler):
    """Holds the DATA reply of each message whose subject starts with "Hold" until released; says when two are
    held (two requests are then in flight at once)."""

    released: threading.Event = field(default_factory=threading.Event)
    both_held: threading.Event = field(default_factory=threading.Event)
    held: int = 0

    async def handle_DATA(self, server, session, envelope):
        if b"Subject: Hold" in envelope.content:
            self.held += 1  # the server's one event loop runs every handler: no lock needed
            if self.held == 2:
                self.both_held.set()
            while not self.released.is_set():
                await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


def recorded_outcomes(app) -> dict[str, dict[int, dict[str, Any]]]:
    rows = app.extensions[STORE_KEY].store.read(lambda conn: conn.execute(select(
        request_outcomes.c.key, request_outcomes.c.position, request_outcomes.c.item)).all())
    found: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row.key.rsplit(":", 1)[1], {})[row.position] = json.loads(row.item)
    return found


def test_concurrent_keyed_batches_each_record_under_their_own_key(make_settings, smtp_server_factory,
                                                                  store_url) -> None:
    handler = HoldingHandler()
    server = smtp_server_factory(handler)
    app = create_app(make_settings(**server.settings(), gateway_idempotency_url=store_url))

    def batch(name: str):
        payload = {"messages": [{**HELLO, "subject": f"First {name}"}, {**HELLO, "subject": f"Hold {name}"}]}
        return post(app.test_client(), payload=payload, key=name, path="/v1/messages/batch")

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = {name: pool.submit(batch, name) for name in ("alpha", "beta")}
        try:
            assert handler.both_held.wait(10), "both batches reached their held message"
            # Both requests are mid-batch: each first message's outcome is recorded under its own request's key.
            wait_until(lambda: {k: set(v) for k, v in recorded_outcomes(app).items()} == {"alpha": {0}, "beta": {0}},
                       "each batch's first outcome recorded")
        finally:
            handler.released.set()
        results = {name: answer.result(timeout=30) for name, answer in answers.items()}
    sent = {str(parsed(m)["Subject"]): str(parsed(m)["Message-ID"]) for m in server.messages}
    assert set(sent) == {"First alpha", "Hold alpha", "First beta", "Hold beta"}
    for name, response in results.items():
        assert response.status_code == 200
        ids = [item["message_id"] for item in response.get_json()["results"]]
        assert ids == [sent[f"First {name}"], sent[f"Hold {name}"]]
        replay = post(app.test_client(), payload={"messages": [{**HELLO, "subject": f"First {name}"},
                                                               {**HELLO, "subject": f"Hold {name}"}]},
                      key=name, path="/v1/messages/batch")
        assert replay.headers["Idempotent-Replayed"] == "true" and replay.get_json() == response.get_json()
    assert recorded_outcomes(app) == {}  # each response recorded, its outcomes with it
    assert len(server.messages) == 4


class PendingTransaction:
    """A transaction still open, as a keyed request's is until its response is recorded."""

    def __init__(self) -> None:
        self.joined: list[Any] = []

    def join(self, work: Any) -> None:
        self.joined.append(work)


def stored(store: Store, message_id: str) -> bool:
    return store.read(lambda conn: messages.get_message(conn, message_id, time.time())) is not None


def test_a_send_joins_only_the_transaction_it_is_given(make_settings, store_url) -> None:
    sender, store = build_sender(make_settings(mail_backend="memory", gateway_delivery="queued",
                                               gateway_store_url=store_url))
    try:
        pending = PendingTransaction()
        joined = sender.send(sender.parse(HELLO), via="test", transaction=pending)
        assert len(pending.joined) == 1 and not stored(store, joined.id)  # written with the transaction, not before
        alone = sender.send(sender.parse(HELLO), via="test")
        assert stored(store, alone.id) and len(pending.joined) == 1  # no transaction given: stored at once
        for work in pending.joined:
            store.write(work)
        assert stored(store, joined.id)
    finally:
        sender.close()
        store.close()


def test_a_send_without_a_transaction_stores_at_once(make_settings, store_url) -> None:
    sender, store = build_sender(make_settings(mail_backend="memory", gateway_delivery="queued",
                                               gateway_store_url=store_url))
    try:
        result = sender.send(sender.parse(HELLO), via="test")
        assert result.status == "queued" and stored(store, result.id)
    finally:
        sender.close()
        store.close()
