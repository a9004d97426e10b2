"""``kill -9`` of ``mail-gateway serve`` (its delivery workers in-process) and of a ``mail-gateway worker``, while
clients post and while deliveries are in flight, then a restart: every message answered 202 arrives at a real
upstream, and one arrives twice only where its history records an attempt whose outcome is unknown. Then a restart
with a full queue, drained exactly once by two processes at the same time. Real processes on loopback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from crash_support import Clients, HoldingHandler, arrivals, events_of, queue_env, start_worker, status_of
from ingress_support import wait_until
from process_support import Process, request
from queue_support import MESSAGE

WORKERS = 4  # GATEWAY_QUEUE_WORKERS of queue_env


class Deployment:
    """``serve``: one process accepting and delivering, the one killed. ``worker``: ``serve --no-worker`` in front
    (it keeps running) and a worker process behind it, the one killed."""

    def __init__(self, kind: str, env: dict[str, str], cwd: Path) -> None:
        self.kind, self.env, self.cwd = kind, env, cwd
        self.processes: list[Process] = []
        self.front = self._start(["serve"] if kind == "serve" else ["serve", "--no-worker"])
        self.victim = self.front if kind == "serve" else self._start(["worker"])

    def _start(self, args: list[str]) -> Process:
        process = start_worker(self.env, self.cwd) if args == ["worker"] else Process(args, self.env, self.cwd)
        self.processes.append(process)
        return process

    def kill(self) -> None:
        self.victim.kill()

    def restart(self) -> None:
        self.victim = self._start(["serve"] if self.kind == "serve" else ["worker"])
        if self.kind == "serve":
            self.front = self.victim

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


@pytest.fixture
def deployments():
    started: list[Deployment] = []
    yield started
    for deployment in started:
        deployment.stop()


def gateway_ids(port: int) -> dict[str, str]:
    """Message-ID -> the gateway's id, of every message in the store (answered or not)."""
    found: dict[str, str] = {}
    while True:
        status, body, _ = request(port, "GET", f"/v1/messages?limit=1000&start={len(found)}")
        assert status == 200, body
        found.update({m["message_id"]: m["id"] for m in body["messages"]})
        if len(found) >= body["total"] or not body["messages"]:
            return found


def assert_all_arrived(deployment: Deployment, handler: HoldingHandler, answered: dict[str, str]) -> set[str]:
    """Every message answered 202 arrived and is delivered; each that arrived more than once has an attempt
    recorded as outcome-unknown. Returns the Message-IDs that arrived twice or more."""
    assert answered
    wait_until(lambda: set(answered) <= set(arrivals(handler)), "every message answered 202 arrived", 60)
    port = deployment.front.port
    for message_id, gateway_id in answered.items():
        wait_until(lambda i=gateway_id: status_of(port, i) == "delivered", f"{message_id} is delivered")
    twice = {message_id for message_id, times in arrivals(handler).items() if times > 1}
    ids = gateway_ids(port)
    for message_id in twice:
        assert "unknown" in events_of(port, ids[message_id]), f"{message_id} arrived twice with no unknown attempt"
    return twice


@pytest.mark.parametrize("kind", ["serve", "worker"])
def test_kill_mid_delivery_then_restart(kind, deployments, tmp_path, smtp_server_factory) -> None:
    handler = HoldingHandler()
    handler.hold.set()  # the upstream takes each message but keeps its 250 back
    upstream = smtp_server_factory(handler)
    deployment = Deployment(kind, queue_env(tmp_path, upstream.port), tmp_path)
    deployments.append(deployment)
    answered = {}
    for n in range(2 * WORKERS):
        status, body, _ = request(deployment.front.port, "POST", "/v1/messages", {**MESSAGE, "subject": f"n{n}"})
        assert status == 202, body
        answered[body["message_id"]] = body["id"]
    wait_until(lambda: handler.holding == WORKERS, "every worker has a delivery in flight")
    in_flight = set(arrivals(handler))
    deployment.kill()
    handler.hold.clear()
    deployment.restart()
    twice = assert_all_arrived(deployment, handler, answered)
    # The deliveries in flight when the process died were sent again; nothing else was.
    assert twice == in_flight and len(in_flight) == WORKERS
    assert sum(arrivals(handler).values()) == len(answered) + WORKERS


@pytest.mark.parametrize("kind", ["serve", "worker"])
def test_kill_mid_acceptance_then_restart(kind, deployments, tmp_path, smtp_server_factory) -> None:
    handler = HoldingHandler(delay=0.02)  # a little slow, so a backlog builds while deliveries are in flight
    upstream = smtp_server_factory(handler)
    deployment = Deployment(kind, queue_env(tmp_path, upstream.port), tmp_path)
    deployments.append(deployment)
    clients = Clients(deployment.front.port)
    try:
        wait_until(lambda: clients.count() >= 40 and len(handler.messages) >= 5, "clients are answered and "
                                                                                 "deliveries under way")
        deployment.kill()
        if kind == "serve":
            answered = clients.stop()  # their server is gone
            deployment.restart()
        else:  # the front keeps accepting while no worker runs, and after one is back
            time.sleep(0.3)
            deployment.restart()
            before = clients.count()
            wait_until(lambda: clients.count() >= before + 20, "more messages accepted after the restart")
            answered = clients.stop()
    finally:
        clients.stop()
    assert clients.refused == []
    assert_all_arrived(deployment, handler, answered)


def test_a_full_queue_is_drained_exactly_once_after_a_restart(deployments, tmp_path, smtp_server_factory) -> None:
    handler = HoldingHandler()
    upstream = smtp_server_factory(handler)
    env = queue_env(tmp_path, upstream.port)
    batch = {"messages": [{**MESSAGE, "subject": f"backlog {n}"} for n in range(100)]}
    answered: dict[str, str] = {}
    front = Process(["serve", "--no-worker"], env, tmp_path)
    try:
        for _ in range(3):
            status, body, _ = request(front.port, "POST", "/v1/messages/batch", batch)
            assert status == 200 and {r["status"] for r in body["results"]} == {"queued"}, body
            answered.update({r["message_id"]: r["id"] for r in body["results"]})
        time.sleep(0.5)
        assert handler.messages == []  # no worker runs: everything waits in the store
    finally:
        front.stop()
    # The gateway comes back with 300 messages waiting: serve with its workers and a worker process both drain.
    deployment = Deployment("serve", env, tmp_path)
    deployments.append(deployment)
    deployment.processes.append(start_worker(env, tmp_path))
    assert len(answered) == 300
    assert_all_arrived(deployment, handler, answered)
    assert set(arrivals(handler).values()) == {1} and len(arrivals(handler)) == 300
    status, body, _ = request(deployment.front.port, "GET", "/v1/messages?status=delivered&limit=1")
    assert body["total"] == 300
