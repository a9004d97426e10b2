"""The store under faults (hostile-clients findings 3 and 4), configured by its earlier name GATEWAY_IDEMPOTENCY_URL:
a keyed request whose process died is answered
with what was accepted; a locked store answers 503 within about a second while /healthz stays up and /readyz
says why; a deleted store is recreated, loudly, and keys used since survive a restart."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from api_helpers import HELLO, assert_problem, outbox
from ingress_support import wait_until
from process_support import Process, gateway_env, request
from smtp_server import HOST, RecordingHandler

from mail_gateway import create_app

LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
"""


class SlowHandler(RecordingHandler):
    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(0.15)
        return await super().handle_DATA(server, session, envelope)


def test_a_crash_mid_batch_is_answered_with_what_was_accepted(tmp_path, smtp_server_factory) -> None:
    upstream = smtp_server_factory(SlowHandler())
    env = gateway_env(gateway_env="testing", mail_backend="smtp", mail_server=HOST, mail_port=upstream.port,
                      mail_pool_size=1, gateway_queue_lease=1, gateway_idempotency_url=f"sqlite:///{tmp_path}/store.db")
    batch = {"messages": [{**HELLO, "subject": f"Message {n}"} for n in range(20)]}
    key = {"Idempotency-Key": "batch-20"}
    serve = Process(["serve"], env, tmp_path)
    try:
        threading.Thread(target=lambda: _quietly(lambda: request(serve.port, "POST", "/v1/messages/batch", batch,
                                                                 key, timeout=30)), daemon=True).start()
        wait_until(lambda: len(upstream.messages) >= 8, "8 messages delivered")
        serve.kill()
    finally:
        serve.stop()
    arrived = len(upstream.messages)
    restarted = Process(["serve"], env, tmp_path)
    try:
        status, body, headers = request(restarted.port, "POST", "/v1/messages/batch", batch, key)
        deadline = time.monotonic() + 10  # in flight until the lease of the dead process ends
        while status == 409 and time.monotonic() < deadline:
            time.sleep(0.2)
            status, body, headers = request(restarted.port, "POST", "/v1/messages/batch", batch, key)
        again = request(restarted.port, "POST", "/v1/messages/batch", batch, key)
    finally:
        restarted.stop()
    assert status == 200 and headers["Idempotent-Replayed"] == "true", body
    accepted = [r for r in body["results"] if r["status"] == "accepted"]
    unknown = [r for r in body["results"] if r["status"] == "failed"]
    assert len(accepted) + len(unknown) == 20 and arrived - 2 <= len(accepted) <= arrived
    received = {m.data.split(b"Message-ID: ")[1].split(b"\r\n")[0].decode() for m in upstream.messages}
    assert {r["message_id"] for r in accepted} <= received
    assert all(r["error"]["type"].endswith("delivery-outcome-unknown") for r in unknown)
    assert again[1] == body and len(upstream.messages) == arrived  # the same answer, nothing sent again


def _quietly(action) -> None:
    try:
        action()
    except OSError:
        pass


def test_a_locked_store_answers_503_promptly_and_healthz_stays_up(tmp_path) -> None:
    path = tmp_path / "store.db"
    env = gateway_env(gateway_env="testing", mail_backend="memory", gateway_idempotency_url=f"sqlite:///{path}")
    serve = Process(["serve", "--threads", "8"], env, tmp_path)
    locker = None
    try:
        assert request(serve.port, "POST", "/v1/messages", HELLO, {"Idempotency-Key": "first"})[0] == 202
        locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(path)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        assert locker.stdout.readline().strip() == "locked"

        def keyed(n: int) -> tuple[int, float, dict]:
            started = time.monotonic()
            status, body, _ = request(serve.port, "POST", "/v1/messages", HELLO, {"Idempotency-Key": f"k{n}"})
            return status, time.monotonic() - started, body

        with ThreadPoolExecutor(max_workers=9) as pool:
            waiting = [pool.submit(keyed, n) for n in range(8)]
            time.sleep(0.2)
            started = time.monotonic()
            assert request(serve.port, "GET", "/healthz", timeout=5)[0] == 200
            assert time.monotonic() - started < 1.5
            outcomes = [future.result(timeout=15) for future in waiting]
        assert all(status == 503 and took < 3 for status, took, _ in outcomes), outcomes
        assert all(body["type"].endswith("store-unavailable") for _, _, body in outcomes)
        ready = request(serve.port, "GET", "/readyz")
        assert ready[0] == 503 and "store" in ready[1]["detail"]
        locker.stdin.close()
        locker.wait(10)
        assert request(serve.port, "POST", "/v1/messages", HELLO, {"Idempotency-Key": "after"})[0] == 202
        assert request(serve.port, "GET", "/readyz")[0] == 200
    finally:
        if locker is not None:
            if locker.poll() is None:
                locker.kill()
                locker.wait(10)
            locker.stdout.close()
        serve.stop()


def test_a_deleted_store_is_recreated_loudly_and_keys_used_since_survive_a_restart(make_settings, tmp_path,
                                                                                    caplog) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    app = create_app(make_settings(mail_backend="memory", gateway_idempotency_url=url))
    client = app.test_client()
    assert client.post("/v1/messages", json=HELLO, headers={"Idempotency-Key": "before"}).status_code == 202
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"store.db{suffix}").unlink(missing_ok=True)
    answer = client.post("/v1/messages", json=HELLO, headers={"Idempotency-Key": "after"})
    assert answer.status_code == 202
    assert any(r.levelname == "CRITICAL" and "DISAPPEARED" in r.getMessage() for r in caplog.records)
    assert client.get("/readyz").status_code == 200
    restarted = create_app(make_settings(mail_backend="memory", gateway_idempotency_url=url))
    replay = restarted.test_client().post("/v1/messages", json=HELLO, headers={"Idempotency-Key": "after"})
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.get_json() == answer.get_json()
    assert outbox(restarted) == [] and len(outbox(app)) == 2
    assert_problem(restarted.test_client().post("/v1/messages", json={**HELLO, "subject": "x"},
                                                headers={"Idempotency-Key": "after"}), 409, "idempotency-key-reused")
