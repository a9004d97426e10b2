"""What the gateway opens it closes: ``serve`` and ``smtpd`` say QUIT to the upstream when stopped, and building
the app writes nothing to disk that the configuration does not need."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from ingress_support import DEADLINE_SECONDS, message_bytes, smtp_ready, wait_until
from process_support import Process, gateway_env, stop_and_read
from smtp_server import HOST, free_port

from mail_gateway import create_app

BIN = Path(sys.executable).parent / "mail-gateway"


def _env(upstream_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "GATEWAY_"))}
    return {**env, "PYTHONUNBUFFERED": "1", "MAIL_BACKEND": "smtp", "MAIL_SERVER": HOST,
            "MAIL_PORT": str(upstream_port)}


def _http_ready(port: int, process: subprocess.Popen) -> bool:
    assert process.poll() is None, "the server exited"
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError):
        return False



def _stopped(process: subprocess.Popen) -> str:
    _, err = stop_and_read(process, DEADLINE_SECONDS)  # SIGTERM, as a service manager stops it
    assert process.returncode == 0 and "Traceback" not in err, err
    return err


def test_serve_says_quit_to_the_upstream_when_stopped(smtp_server, tmp_path) -> None:
    port = free_port()
    process = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=_env(smtp_server.port), cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: _http_ready(port, process), "serve answers")
        request = urllib.request.Request(
            f"http://{HOST}:{port}/v1/messages", method="POST", headers={"Content-Type": "application/json"},
            data=json.dumps({"from": "app@example.com", "to": ["friend@example.com"], "text": "Hi"}).encode())
        with urllib.request.urlopen(request, timeout=DEADLINE_SECONDS) as response:
            assert response.status == 202
        assert len(smtp_server.messages) == 1 and smtp_server.handler.quits == 0  # the connection is pooled
    finally:
        _stopped(process)
    wait_until(lambda: smtp_server.handler.quits == 1, "the pooled connection said QUIT")


def test_smtpd_says_quit_to_the_upstream_when_stopped(smtp_server, tmp_path) -> None:
    port = free_port()
    process = subprocess.Popen([str(BIN), "smtpd", "--port", str(port)], env=_env(smtp_server.port), cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: smtp_ready(port, process), "smtpd answers")
        with smtplib.SMTP(HOST, port, timeout=DEADLINE_SECONDS) as client:
            client.sendmail("app@example.com", ["friend@example.com"], message_bytes())
        assert len(smtp_server.messages) == 1 and smtp_server.handler.quits == 0
    finally:
        err = _stopped(process)
    wait_until(lambda: smtp_server.handler.quits == 1, "the pooled connection said QUIT")
    assert "via=smtp" in err and "outcome=accepted" in err


def test_building_and_using_the_app_writes_no_file_it_does_not_need(make_settings, tmp_path) -> None:
    before = sorted(tmp_path.rglob("*"))  # the working directory of every test
    client = create_app(make_settings(mail_backend="memory")).test_client()
    assert client.post("/v1/messages", json={"from": "app@example.com", "to": "a@example.com", "text": "x"}
                       ).status_code == 202
    assert sorted(tmp_path.rglob("*")) == before
    # The store is made where it is configured, when the first idempotency key needs it.
    assert client.post("/v1/messages", json={"from": "app@example.com", "to": "a@example.com", "text": "x"},
                       headers={"Idempotency-Key": "k1"}).status_code == 202
    assert any(path.name.startswith(".mail-gateway.sqlite3") for path in tmp_path.iterdir())


# A prefork master whose new worker, right after the fork and before it has set its own signal handlers, asks
# the master to stop and gives the master's TERM time to arrive. The graceful timeout is long, so a worker that
# lost that TERM is only stopped by the master's kill, long after the deadline below.
TERM_DURING_BOOT = """
import os, signal, sys, time
from mail_gateway.cli.prefork import PreforkServer
from mail_gateway.http.server import bind
from mail_gateway.settings import load_settings

def stop_the_master_now(arbiter, worker):
    os.kill(arbiter.pid, signal.SIGTERM)
    time.sleep(1)

class TermDuringBoot(PreforkServer):
    def load_config(self):
        super().load_config()
        self.cfg.set("post_fork", stop_the_master_now)
        self.cfg.set("graceful_timeout", 300)

settings = load_settings(gateway_port=int(sys.argv[1]))
TermDuringBoot(settings, bind(settings.gateway_host, settings.gateway_port), workers=1, threads=2,
               delivery_workers=False).run()
"""


def test_a_worker_told_to_stop_while_it_boots_stops(tmp_path) -> None:
    process = subprocess.Popen([sys.executable, "-c", TERM_DURING_BOOT, str(free_port())], cwd=tmp_path,
                               env=gateway_env(gateway_env="testing"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = process.communicate(timeout=DEADLINE_SECONDS * 2)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"the worker lost the master's TERM and served on:\n{err}") from None
    assert process.returncode == 0 and "Worker exiting" in err and "Traceback" not in err, err


def _answer(sock: socket.socket) -> tuple[str, bytes]:
    """One HTTP answer read off ``sock``: its head and its body (by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next((line.split(b":", 1)[1] for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), b"0"))
    while len(body) < length:
        body += sock.recv(65536)
    return head.decode("latin-1"), body


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_stopping_http_process_closes_keep_alive_connections_after_their_answers(tmp_path, processes) -> None:
    """After TERM, serve --workers kept serving keep-alive clients for seconds: a connection waiting between two
    requests is closed at once, and a request under way is answered with ``Connection: close``, then closed."""
    server = Process(["serve", "--workers", processes], gateway_env(gateway_env="testing", mail_backend="memory"),
                     tmp_path)
    body = json.dumps({"from": "app@example.com", "to": ["a@example.com"], "text": "Hi"}).encode()
    head = (f"POST /v1/messages HTTP/1.1\r\nHost: {HOST}:{server.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    try:
        with socket.create_connection((HOST, server.port), timeout=DEADLINE_SECONDS) as idle, \
                socket.create_connection((HOST, server.port), timeout=DEADLINE_SECONDS) as busy:
            for sock in (idle, busy):
                sock.sendall(head + body)
                status, _ = _answer(sock)
                assert status.startswith("HTTP/1.1 202") and "connection: close" not in status.lower()
            busy.sendall(head + body[:10])  # a request under way when the process is told to stop
            server.proc.send_signal(signal.SIGTERM)
            wait_until(lambda: "stopping, 1 connection(s) to finish" in server.output(), "the process stopping")
            assert idle.recv(1) == b""  # closed, not served on
            busy.sendall(body[10:])
            status, answer = _answer(busy)
            assert status.startswith("HTTP/1.1 202") and "connection: close" in status.lower(), status
            assert json.loads(answer)["recipients"][0]["status"] == "accepted"
            assert busy.recv(1) == b""
        assert server.proc.wait(DEADLINE_SECONDS) == 0, server.output()
    finally:
        server.stop()


def test_a_loop_that_does_not_end_is_left_after_its_bound_and_logged(caplog) -> None:
    from mail_gateway.lifecycle import Loop

    release, failed = threading.Event(), threading.Event()
    steps: list[int] = []

    def step() -> None:
        steps.append(1)
        if len(steps) == 1:
            failed.set()
            raise RuntimeError("a bug in one round")
        release.wait(30)  # a wait stop() cannot wake

    loop = Loop("stubborn", step, retry=0.0).start()
    assert failed.wait(10)
    wait_until(lambda: len(steps) == 2, "the loop went on after a failing round")
    assert loop.stop(timeout=0.2) is False and loop.alive  # returned at its bound, the thread left running
    assert "stubborn failed; it goes on" in caplog.text and "stubborn did not stop within 0.2 s" in caplog.text
    release.set()
    wait_until(lambda: not loop.alive, "the loop ended once its step returned")
