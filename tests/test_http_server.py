"""Finding 1 of the hostile-client review: ``mail-gateway serve`` against idle, slow and malformed clients, over
real sockets on loopback, as one process and as two under the prefork master (``--workers 2``), where each
HTTP process must keep every guarantee. Bounded in count (1,200 connections at most) and time (seconds each);
the tests assert what is answered, never how fast."""

from __future__ import annotations

import json
import os
import random
import re
import resource
import socket
import sqlite3
import string
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
from waitress.adjustments import Adjustments
from waitress.utilities import InternalServerError

from mail_gateway.http.channels import server_problem

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


def granian_command(port: int, workers: int, settings: dict[str, str]) -> list[str]:
    """granian hosting the same app with the nearest equivalents of serve's limits: its one timer, for a
    request's headers to arrive, stands for both the idle keep-alive time and the request deadline (at most
    60 s); its connection buffer for the 64 KiB header limit."""
    seconds = min(float(settings.get("GATEWAY_HTTP_IDLE_TIMEOUT", "10")),
                  float(settings.get("GATEWAY_HTTP_REQUEST_TIMEOUT", "60")))
    return [sys.executable, "-m", "granian", "--interface", "wsgi", "--factory", "--host", HOST, "--port", str(port),
            "--workers", str(workers), "--blocking-threads", "8", "--backlog", "2048", "--http", "1", "--no-ws",
            "--http1-buffer-size", str(64 * 1024), "--http1-header-read-timeout", str(int(min(seconds, 60) * 1000)),
            "--log-level", "warning", "mail_gateway.app:create_app"]


@pytest.fixture(params=[1, 2], ids=["1-process", "2-processes"])
def serve(tmp_path, request) -> Iterator[Callable[..., int]]:
    """Start the gateway as ``mail-gateway serve --workers N``, or under the server ``--http-server`` names."""
    processes: list[subprocess.Popen] = []
    server = request.config.getoption("--http-server")

    def start(**settings: str) -> int:
        port = free_port()
        command = [str(BIN), "serve", "--port", str(port), "--workers", str(request.param)]
        if server == "granian":
            command = granian_command(port, request.param, settings)
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
        assert b"\r\nX-Content-Type-Options: nosniff\r\n" in answer
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


# Each refusal the server answers before the app runs: its status, problem type, and what its detail must say (the
# limit or the part of the request at fault, and the fix).
SERVER_REFUSALS = [
    (b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
     b"Content-Length: 5000\r\n\r\n", 413, "request-too-large", ["2048 bytes (GATEWAY_MAX_MESSAGE_BYTES)"]),
    (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431,
     "header-too-large", [f"{64 * 1024} bytes", "send shorter header fields"]),
    (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: nope\r\n\r\n", 400, "malformed-request",
     ["Content-Length is invalid", "one Content-Length"]),
    (b"G@T /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, "malformed-request",
     ["Start line is invalid", "METHOD /path HTTP/1.1"]),
    (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
     "unsupported-transfer-encoding", ["Transfer-Encoding", "Content-Length", "chunked alone"]),
]


@pytest.mark.parametrize(("raw", "status", "slug", "said"), SERVER_REFUSALS,
                         ids=["body-too-large", "header-too-large", "bad-content-length", "bad-request-line",
                              "unknown-transfer-encoding"])
def test_the_servers_own_refusals_are_problems(serve, raw: bytes, status: int, slug: str, said: list[str]) -> None:
    port = serve(GATEWAY_MAX_MESSAGE_BYTES="2048")
    answer_status, headers, body = _request(port, raw)
    assert answer_status == status
    assert headers["content-type"] == "application/problem+json"
    assert headers["x-content-type-options"] == "nosniff"  # as every answer of the app has it
    problem = json.loads(body)
    assert problem["status"] == status and problem["type"] == f"urn:mail-gateway:problem:{slug}"
    assert all(text in problem["detail"] for text in said), problem["detail"]
    assert b"waitress" not in body and b"Traceback" not in body
    assert b"max_header" not in body and b"max_body" not in body  # the server's own names for its limits


def test_an_exception_that_escapes_the_app_is_a_problem_without_its_text() -> None:
    problem = server_problem(InternalServerError("Traceback (most recent call last): a secret"), Adjustments()).body()
    assert problem["status"] == 500 and problem["type"] == "urn:mail-gateway:problem:internal-error"
    assert "Traceback" not in json.dumps(problem) and "secret" not in json.dumps(problem)


_HELLO = json.dumps({"from": "app@example.com", "to": ["friend@example.com"], "subject": "Hello",
                     "text": "Hi."}).encode()
_ONCE = {"Host": "127.0.0.1", "Content-Type": "application/json", "Authorization": "Bearer k-1",
         "Content-Length": str(len(_HELLO))}
_TWICE = [("Idempotency-Key", ["a", "b"]), ("Idempotency-Key", ["a", "a"]),
          ("Authorization", ["Bearer k-1", "Bearer k-2"]), ("Content-Type", ["application/json", "text/plain"]),
          ("Host", ["127.0.0.1", "attacker.example"])]


def _sent_twice(port: int, header: str, values: list[str]) -> dict:
    lines = [f"{name}: {value}" for name, value in _ONCE.items() if name != header]
    lines += [f"{header}: {value}" for value in values]
    head = "POST /v1/messages HTTP/1.1\r\n" + "".join(f"{line}\r\n" for line in lines) + "\r\n"
    status, headers, body = _request(port, head.encode() + _HELLO)
    assert status == 400 and headers["content-type"] == "application/problem+json", (header, body)
    return json.loads(body)


def test_a_header_sent_twice_is_refused_naming_it(serve) -> None:
    # waitress joins a repeated header ("a, b") before the app sees it: the joined Idempotency-Key was a key of its
    # own, two valid keys a 401, two media types a 415, two Hosts served (GATEWAY_ALLOWED_HOSTS=*).
    port = serve(GATEWAY_API_KEYS="k-1,k-2", GATEWAY_ALLOWED_HOSTS="*")
    for header, values in _TWICE:
        problem = _sent_twice(port, header, values)
        assert problem["type"] == "urn:mail-gateway:problem:duplicate-header", (header, problem)
        assert problem["errors"][0]["field"] == header and f"send {header} once" in problem["detail"]
    # waitress refuses two Content-Length itself, before the app.
    problem = _sent_twice(port, "Content-Length", [str(len(_HELLO))] * 2)
    assert problem["type"] == "urn:mail-gateway:problem:malformed-request", problem
    assert "Content-Length is invalid" in problem["detail"] and "one Content-Length" in problem["detail"], problem


def test_a_request_target_in_absolute_form_is_held_to_its_own_host_not_the_host_field(serve) -> None:
    # RFC 9112 3.2.2: with an absolute-form target the server uses the target's host and ignores Host. The Host
    # field was read, so a request for any name was served with Host set to an allowed one.
    port = serve(GATEWAY_ALLOWED_HOSTS="127.0.0.1")
    status, headers, body = _request(port, b"GET http://evil.example/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status == 400 and headers["content-type"] == "application/problem+json", body
    assert b"evil.example" in body and b"GATEWAY_ALLOWED_HOSTS" in body
    status, _, body = _request(port, b"GET http://127.0.0.1/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status == 200, body


def _keyed_post(port: int, key: str) -> int:
    head = (f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Idempotency-Key: {key}\r\nContent-Length: {len(_HELLO)}\r\n\r\n").encode()
    return _request(port, head + _HELLO, timeout=60)[0]


def test_a_request_blocked_on_the_store_leaves_a_fresh_client_answered(serve, tmp_path) -> None:
    port = serve(GATEWAY_ALLOW_ANONYMOUS="true")
    assert _keyed_post(port, "first") == 202  # the store exists, in the server's working directory
    holder = sqlite3.connect(tmp_path / ".mail-gateway.sqlite3", isolation_level=None)
    statuses: list[int] = []
    waiting = threading.Thread(target=lambda: statuses.append(_keyed_post(port, "blocked")), daemon=True)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        waiting.start()
        waiting.join(1.0)  # a moment to reach the lock; whether it did shows below
        assert waiting.is_alive() and not statuses, "the keyed request was not held by the locked store"
        for _ in range(5):
            status, _, body = _request(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert status == 200 and json.loads(body) == {"status": "ok"}
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        waiting.join(60)
    assert statuses and statuses[0] in (202, 503), statuses


def test_a_chunked_body_over_the_limit_is_refused_before_it_is_read_whole(serve) -> None:
    """No Content-Length to refuse on: the limit must stop the reading itself, not judge a body held whole."""
    port = serve(GATEWAY_MAX_MESSAGE_BYTES="2048")
    chunk = b"a" * 65536
    sent, answer = 0, b""
    with socket.create_connection((HOST, port), timeout=ANSWER_SECONDS) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        sock.settimeout(0.05)
        while not answer and sent < 64 * MEGABYTE:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionError:
                break
        sock.settimeout(ANSWER_SECONDS)
        while answer and not answer.endswith(b"}"):  # the rest of the problem's JSON
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    assert answer.startswith(b"HTTP/1.1 413"), (sent, answer[:200])
    assert b"application/problem+json" in answer and b"GATEWAY_MAX_MESSAGE_BYTES" in answer
    assert sent < 8 * MEGABYTE, f"refused only after {sent} bytes"


# Issue 20, item 2: invented methods and paths, sent without a key, must not grow /metrics or the server's memory.
METRICS_KEY = "metrics-key-0123456789"
KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "other"}
MEGABYTE = 1024 * 1024


def _rss_of_tree(port: int) -> int:
    """Resident bytes of every process listening on ``port`` and of their children (the prefork workers)."""
    pids = {int(pid) for pid in os.listdir("/proc") if pid.isdigit()}
    inode_of_port = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                    inode_of_port.add(fields[9])
    total = 0
    for pid in pids:
        try:
            links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
            if any(f"socket:[{inode}]" in links for inode in inode_of_port):
                with open(f"/proc/{pid}/status") as status:
                    total += next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
        except (FileNotFoundError, PermissionError, ProcessLookupError, StopIteration):
            continue
    assert total, f"no process found listening on port {port}"
    return total


class _Pipeline:
    """One keep-alive connection sending requests in batches and reading every answer."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=ANSWER_SECONDS)
        self.buffer = b""

    def _answer(self) -> int:
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(1 << 20)
            assert chunk, "the server closed the connection"
            self.buffer += chunk
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = int(next((line.split(b":", 1)[1] for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), b"0"))
        while len(rest) < length:
            chunk = self.sock.recv(1 << 20)
            assert chunk, "the server closed the connection"
            rest += chunk
        self.buffer = rest[length:]
        return int(head.split(b" ", 2)[1])

    def send(self, requests: list[bytes]) -> list[int]:
        self.sock.sendall(b"".join(requests))
        return [self._answer() for _ in requests]

    def close(self) -> None:
        self.sock.close()


def _invented_requests(count: int, rng: random.Random) -> Iterator[bytes]:
    """Methods no one defined (long, random) and paths that match nothing, cycling through every kind of
    answer a client without a key gets: 401 under /v1, 404 elsewhere, 405 on a route with another method."""
    kinds = ["/v1/{}", "/{}", "/v1/messages", "/healthz", "/metrics", "/outbox/messages/{}/raw"]
    for index in range(count):
        word = "".join(rng.choices(string.ascii_letters, k=rng.randint(20, 60)))
        method = "".join(rng.choices(string.ascii_uppercase, k=rng.randint(2000, 6000)))
        if index % 7 == 0:
            method = rng.choice(["GET", "PROPFIND", "BREW"])
        path = kinds[index % len(kinds)].format(word)
        yield f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def _send_invented(port: int, count: int, rng: random.Random) -> None:
    pipeline = _Pipeline(port)
    try:
        batch: list[bytes] = []
        for raw in _invented_requests(count, rng):
            batch.append(raw)
            if len(batch) == 50:
                assert all(400 <= status < 500 or status == 200 for status in pipeline.send(batch))
                batch = []
        pipeline.send(batch)
    finally:
        pipeline.close()


def _scrape(port: int) -> tuple[bytes, set[tuple[tuple[str, str], ...]]]:
    """The /metrics text and the label sets of its HTTP request series."""
    status, _, body = _request(port, f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                                     f"{METRICS_KEY}\r\n\r\n".encode(), timeout=60)
    assert status == 200
    series = set()
    for line in body.decode().splitlines():
        if line.startswith("mail_gateway_http_requests_total{"):
            labels = line[line.index("{") + 1:line.rindex("}")]
            series.add(tuple(sorted(re.findall(r'(\w+)="([^"]*)"', labels))))
    return body, series


def test_invented_methods_and_paths_leave_the_metrics_and_the_memory_flat(serve) -> None:
    from mail_gateway import create_app
    from mail_gateway.settings import GatewaySettings

    port = serve(GATEWAY_API_KEYS=METRICS_KEY)
    rng = random.Random(20)
    _send_invented(port, 1000, rng)
    _scrape(port)  # the first scrape is counted in the next one
    scrape_before, series_before = _scrape(port)
    rss_before = _rss_of_tree(port)
    _send_invented(port, 10_000, rng)
    scrape_after, series_after = _scrape(port)
    rss_after = _rss_of_tree(port)

    # Every label comes from a closed set: the app's route templates, the HTTP methods, HTTP status codes.
    routes = {rule.rule for rule in create_app(GatewaySettings(_env_file=None, gateway_env="testing"))
              .url_map.iter_rules()} | {"unmatched"}
    statuses = {str(code) for code in range(100, 600)}
    closed = {"method": KNOWN_METHODS, "route": routes, "status": statuses}
    outside = sorted({f"{name}={value[:40]}" for labels in series_after for name, value in labels
                      if value not in closed[name]})
    assert not outside, f"{len(outside)} label values outside the closed sets, e.g. {outside[:3]}"
    # The 10,000 requests asked for nothing the first 1,000 had not: no new series, about the same scrape.
    assert series_after == series_before, f"{len(series_before)} series became {len(series_after)}"
    assert len(scrape_after) < len(scrape_before) * 1.1 + 1024, (len(scrape_before), len(scrape_after))
    assert rss_after - rss_before < 20 * MEGABYTE, (rss_before // MEGABYTE, rss_after // MEGABYTE)
