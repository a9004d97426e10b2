"""Changes that share one transaction of the store: requests storing at the same time share one change (the
spool) and changes share one commit (the writer). One that fails spoils only itself; a store that is locked fails
every request that shared its change promptly, with nothing stored, and they all succeed once it is free."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from api_helpers import assert_problem
from queue_support import MESSAGE, queued_app
from test_store_resilience import LOCKER

from mail_gateway.store import messages
from mail_gateway.store.database import Store


def _new(message_id: str) -> messages.NewMessage:
    now = time.time()
    return messages.NewMessage(message_id, "<m@example.com>", "a@example.com", ("b@example.com",), b"x", "http",
                               now, None, now + 60)


def test_a_failing_change_spoils_only_itself(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path}/store.db").open()
    gate = threading.Event()
    store.write(lambda conn: gate.wait(5), wait=False)  # holds the writer, so the next changes share a commit

    def bad(conn) -> None:
        messages.enqueue(conn, [_new("bad")])
        raise ValueError("refused by the caller's own check")

    with ThreadPoolExecutor(max_workers=2) as pool:
        good = pool.submit(store.write, lambda conn: messages.enqueue(conn, [_new("good")]) or "stored")
        failing = pool.submit(store.write, bad)
        time.sleep(0.2)
        gate.set()
        assert good.result(10) == "stored"
        with pytest.raises(ValueError, match="caller's own check"):
            failing.result(10)
    found = store.read(lambda conn: messages.list_messages(conn, status=None, limit=10, start=0, now=time.time()))
    assert [m["id"] for m in found[1]] == ["good"]
    store.close()


def test_requests_sharing_a_change_fail_together_on_a_locked_store_then_succeed(make_settings, tmp_path) -> None:
    path = tmp_path / "store.db"
    queued = queued_app(make_settings, workers=False, mail_backend="memory", gateway_store_url=f"sqlite:///{path}")
    queued.send()  # the store exists, with its schema
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout.readline().strip() == "locked"

        def post(n: int):
            started = time.monotonic()
            response = queued.app.test_client().post("/v1/messages", json={**MESSAGE, "subject": f"n{n}"})
            return response, time.monotonic() - started

        with ThreadPoolExecutor(max_workers=8) as pool:
            refused = list(pool.map(post, range(8)))
        for response, took in refused:
            assert_problem(response, 503, "store-unavailable")
            assert took < 3
    finally:
        locker.stdin.close()
        locker.wait(10)
        locker.stdout.close()
    with ThreadPoolExecutor(max_workers=8) as pool:
        accepted = [response for response, _ in pool.map(post, range(8))]
    assert [r.status_code for r in accepted] == [202] * 8
    listed = queued.client.get("/v1/messages?limit=100").get_json()
    assert listed["total"] == 9 and len({m["id"] for m in listed["messages"]}) == 9
