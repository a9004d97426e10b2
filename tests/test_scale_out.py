"""Several processes on one PostgreSQL store, as on several hosts: ``serve --workers N`` under its prefork
master, keys and statuses shared between ``serve`` processes, and ``worker --concurrency N``. Real processes on
loopback, a real upstream, the suite's private PostgreSQL cluster."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess

from api_helpers import HELLO
from ingress_support import wait_until
from process_support import BIN, Process, children, gateway_env, metric, request, scrape
from smtp_server import HOST, RecordingHandler

FAST = {"gateway_queue_backoff_min": 0.05, "gateway_queue_backoff_max": 0.2, "gateway_queue_lease": 2}


def queued_env(url: str, upstream_port: int, **values) -> dict[str, str]:
    return gateway_env(gateway_env="testing", gateway_delivery="queued", gateway_store_url=url, mail_backend="smtp",
                       mail_server=HOST, mail_port=upstream_port, **{**FAST, **values})


def test_serve_workers_runs_n_http_processes_that_share_metrics_and_are_replaced_when_killed(
        postgres_url, smtp_server, tmp_path) -> None:
    serve = Process(["serve", "--workers", "2"], queued_env(postgres_url, smtp_server.port), tmp_path)
    try:
        wait_until(lambda: len(children(serve.proc.pid)) == 2, "two HTTP processes")
        ids = [request(serve.port, "POST", "/v1/messages", HELLO)[1]["id"] for _ in range(20)]
        wait_until(lambda: len(smtp_server.messages) == 20, "20 messages delivered by the in-process workers")
        for _ in range(4):  # whichever process answers the scrape counts both processes' requests
            assert metric(scrape(serve.port), 'mail_gateway_http_requests_total{method="POST"') == 20
        assert request(serve.port, "GET", f"/v1/messages/{ids[0]}")[1]["status"] == "delivered"
        first, _ = children(serve.proc.pid)
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: first not in children(serve.proc.pid) and len(children(serve.proc.pid)) == 2,
                   "the killed HTTP process replaced")
        assert all(request(serve.port, "POST", "/v1/messages", HELLO)[0] == 202 for _ in range(10))
        serve.proc.send_signal(signal.SIGTERM)
        assert serve.proc.wait(30) == 0
        output = serve.output()
    finally:
        serve.stop()
    assert "Traceback" not in output and "Shutting down: Master" in output
    wait_until(lambda: len(smtp_server.messages) >= 30, "every message accepted delivered")


def test_workers_and_smtp_together_are_refused_in_one_line(tmp_path) -> None:
    done = subprocess.run([str(BIN), "serve", "--workers", "2", "--smtp", "--port", "9"],
                          env=gateway_env(gateway_env="testing", mail_backend="memory"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "mail-gateway smtpd" in done.stderr.strip().splitlines()[-1]


def test_a_port_in_use_stops_serve_workers_in_one_line(tmp_path) -> None:
    import socket

    with socket.create_server((HOST, 0)) as taken:
        done = subprocess.run([str(BIN), "serve", "--workers", "2", "--port", str(taken.getsockname()[1])],
                              env=gateway_env(gateway_env="testing", mail_backend="memory"), cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and "cannot listen" in lines[0], done.stderr


def test_a_key_used_on_one_host_is_honoured_on_another(postgres_url, smtp_server, tmp_path) -> None:
    env = queued_env(postgres_url, smtp_server.port)
    hosts = [Process(["serve"], env, tmp_path), Process(["serve", "--no-worker"], env, tmp_path)]
    key = {"Idempotency-Key": "order-77"}
    try:
        status, first, _ = request(hosts[0].port, "POST", "/v1/messages", HELLO, key)
        assert status == 202
        status, again, headers = request(hosts[1].port, "POST", "/v1/messages", HELLO, key)
        assert status == 202 and again == first and headers["Idempotent-Replayed"] == "true"
        status, other, _ = request(hosts[1].port, "POST", "/v1/messages", {**HELLO, "subject": "Other"}, key)
        assert status == 409 and other["type"].endswith("idempotency-key-reused")
        wait_until(lambda: request(hosts[1].port, "GET", f"/v1/messages/{first['id']}")[1]["status"] == "delivered",
                   "the message delivered, as the other host sees it")
    finally:
        for host in hosts:
            host.stop()
    assert len(smtp_server.messages) == 1


class SlowHandler(RecordingHandler):
    """Holds each message a moment and remembers the most it held at once."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = self.most = 0

    async def handle_DATA(self, server, session, envelope):
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0.1)
        self.in_flight -= 1
        return await super().handle_DATA(server, session, envelope)


def test_worker_concurrency_bounds_deliveries_at_once(postgres_url, smtp_server_factory, tmp_path) -> None:
    upstream = smtp_server_factory(SlowHandler())
    env = queued_env(postgres_url, upstream.port)
    serve = Process(["serve", "--no-worker"], env, tmp_path)
    worker = Process(["worker", "--concurrency", "3"], env, tmp_path, http=False)
    try:
        for _ in range(24):
            assert request(serve.port, "POST", "/v1/messages", HELLO)[0] == 202
        wait_until(lambda: len(upstream.messages) == 24, "24 messages delivered", timeout=30)
    finally:
        worker.stop()
        serve.stop()
    assert upstream.handler.most == 3
