"""Finding 1 of the hostile-client review: ``mail-gateway serve`` against idle, slow and malformed clients, over
real sockets on loopback, as one process and as two under the prefork master (``--workers 2``), where each
HTTP process must keep every guarantee. Bounded in count (1,200 connections at most) and time (seconds each);
the tests assert what is answered, never how fast."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ingress_support import wait_until
from process_support import stop_and_read
from smtp_server import HOST, free_port

BIN = Path(sys.executable).parent / "mail-gateway"
ANSWER_SECONDS = 10.0  # generous: a fresh client must be answered at all, the figure is for `make bench`
IDLE_CLIENTS = 1000
SLOW_CLIENTS = 200
STOP_SECONDS = 20  # under the prefork master's graceful timeout (30 s), so a worker deaf to TERM is caught


def raise_open_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"this machine allows {hard} open files; the test needs {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "GATEWAY_"))}
    return {**env, "PYTHONUNBUFFERED": "1", "GATEWAY_ENV": "testing", **values}


def _answers(port: int) -> bool:
    try:
        return _request(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", timeout=2)[0] == 200
    except OSError:
        return False


@pytest.fixture(params=[1, 2], ids=["1-process", "2-processes"])
def serve(tmp_path, request) -> Iterator[Callable[..., int]]:
    processes: list[subprocess.Popen] = []

    def start(**settings: str) -> int:
        port = free_port()
        command = [str(BIN), "serve", "--port", str(port), "--workers", str(request.param)]
        process = subprocess.Popen(command, env=_env(**settings), cwd=tmp_path,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        processes.append(process)
        wait_until(lambda: process.poll() is None and _answers(port) or process.poll() is not None, "serve answers")
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        return port

    yield start
    for process in processes:
        _, err = stop_and_read(process, STOP_SECONDS)
        assert "Traceback" not in err, err


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed without an answer after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _request(port: int, raw: bytes, timeout: float = ANSWER_SECONDS) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(raw)
        return _read_response(sock)


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


def test_idle_and_slow_clients_leave_a_fresh_client_answered(serve) -> None:
    raise_open_file_limit(2 * (IDLE_CLIENTS + SLOW_CLIENTS) + 200)
    port = serve(GATEWAY_HTTP_IDLE_TIMEOUT="60", GATEWAY_HTTP_REQUEST_TIMEOUT="60")
    request = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    idle: list[socket.socket] = []
    slow: list[socket.socket] = []
    stop = threading.Event()
    try:
        # Keep-alive connections as client pools leave them: one request answered, then silence.
        for _ in range(IDLE_CLIENTS):
            sock = socket.create_connection((HOST, port), timeout=ANSWER_SECONDS)
            sock.sendall(request)
            idle.append(sock)
        assert all(_read_response(sock)[0] == 200 for sock in idle)
        for _ in range(SLOW_CLIENTS):
            sock = socket.create_connection((HOST, port), timeout=ANSWER_SECONDS)
            sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append(sock)

        def drip() -> None:  # one more header line now and then, never the end of the headers
            while not stop.wait(0.5):
                for sock in slow:
                    sock.sendall(b"X-Slow: 1\r\n")

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        status, _, body = _request(port, request)
        assert status == 200 and json.loads(body) == {"status": "ok"}
        # The idle connections were kept, not dropped to make room: each still serves a request.
        for sock in idle[:: IDLE_CLIENTS // 10]:
            sock.sendall(request)
            assert _read_response(sock)[0] == 200
    finally:
        stop.set()
        for sock in idle + slow:
            sock.close()


def test_idle_keep_alive_connections_are_closed_after_the_idle_timeout(serve) -> None:
    port = serve(GATEWAY_HTTP_IDLE_TIMEOUT="1")
    with socket.create_connection((HOST, port), timeout=ANSWER_SECONDS) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, headers, _ = _read_response(sock)
        assert status == 200 and headers.get("connection", "").lower() != "close"
        assert _closed_by_server(sock, within=ANSWER_SECONDS)


def test_a_request_that_does_not_arrive_within_the_deadline_is_answered_408(serve) -> None:
    port = serve(GATEWAY_HTTP_REQUEST_TIMEOUT="1", GATEWAY_HTTP_IDLE_TIMEOUT="60")
    with socket.create_connection((HOST, port), timeout=ANSWER_SECONDS) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n")
        started = time.monotonic()
        answer = b""
        sock.settimeout(0.2)
        while time.monotonic() - started < ANSWER_SECONDS and not answer:
            try:  # a header line every 0.2 s: never idle, never finished
                sock.sendall(b"X-Slow: 1\r\n")
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionError:
                break
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"application/problem+json" in answer and b"GATEWAY_HTTP_REQUEST_TIMEOUT" in answer
        assert _closed_by_server(sock, within=ANSWER_SECONDS)


def test_a_slow_body_misses_the_deadline_too(serve) -> None:
    port = serve(GATEWAY_HTTP_REQUEST_TIMEOUT="1", GATEWAY_HTTP_IDLE_TIMEOUT="60")
    with socket.create_connection((HOST, port), timeout=ANSWER_SECONDS) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{")
        deadline = time.monotonic() + ANSWER_SECONDS
        sock.settimeout(0.2)
        answer = b""
        while time.monotonic() < deadline and not answer:
            try:
                sock.sendall(b" ")
                answer = sock.recv(65536)
            except TimeoutError:
                continue
        assert answer.startswith(b"HTTP/1.1 408"), answer


@pytest.mark.parametrize(("raw", "status", "slug"), [
    (b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
     b"Content-Length: 5000\r\n\r\n", 413, "urn:mail-gateway:problem:request-too-large"),
    (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431, "about:blank"),
    (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: nope\r\n\r\n", 400, "about:blank"),
    (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "about:blank"),
], ids=["body-too-large", "header-too-large", "bad-content-length", "unknown-transfer-encoding"])
def test_the_servers_own_refusals_are_problems(serve, raw: bytes, status: int, slug: str) -> None:
    port = serve(GATEWAY_MAX_MESSAGE_BYTES="2048")
    answer_status, headers, body = _request(port, raw)
    assert answer_status == status
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == status and problem["type"] == slug and problem["detail"]
    assert b"waitress" not in body and b"Traceback" not in body
