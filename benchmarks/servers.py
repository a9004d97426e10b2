"""Which production HTTP server: the gateway (memory backend) under each candidate, measured for throughput with
keep-alive clients and for what idle and slow clients do to a fresh one (``benchmarks.connections``).

The candidates run one process each, as ``mail-gateway serve`` does: waitress as ``serve`` tunes it, waitress
with its defaults (how ``serve`` ran it before), gunicorn's gthread worker, gunicorn's gevent worker and
granian (Rust, WSGI), each given the same connection limit and idle keep-alive time where it has them. Every
connection guarantee is tested on a candidate with ``pytest tests/test_http_server.py --http-server=granian``.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import payload
from benchmarks.connections import probe
from benchmarks.drive import HttpScenario, Plan, gateway_env, measure
from benchmarks.procs import HOST, HttpServer, clean_env
from benchmarks.results import Row

GROUP = "HTTP servers, memory backend"
MAX_CONNECTIONS, IDLE_SECONDS = 2000, 10
APP = "mail_gateway.app:create_app()"
STORE_FILE = ".mail-gateway.sqlite3"  # the store's default file in the server's working directory, keys included


def candidates(threads: int) -> list[tuple[str, list[str] | None, str | None]]:
    """(label, command with {port} to fill, the module it needs); a None command is ``mail-gateway serve``."""
    gunicorn = [sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", HOST + ":{port}",
                "--worker-connections", str(MAX_CONNECTIONS), "--keep-alive", str(IDLE_SECONDS)]
    return [
        (f"waitress as mail-gateway serve runs it, {threads} threads", None, None),
        (f"waitress defaults, {threads} threads (serve before tuning)",
         [sys.executable, "-m", "waitress", "--port", "{port}", "--host", HOST, "--threads", str(threads),
          "--call", APP.removesuffix("()")], None),
        (f"gunicorn gthread, 1 worker, {threads} threads",
         [*gunicorn, "--worker-class", "gthread", "--threads", str(threads), APP], "gunicorn"),
        ("gunicorn gevent, 1 worker", [*gunicorn, "--worker-class", "gevent", APP], "gevent"),
        (f"granian WSGI, 1 worker, {threads} threads", granian_command(threads), "granian"),
    ]


def granian_command(threads: int) -> list[str]:
    """granian (Rust, WSGI) with the nearest equivalents of serve's limits: its one timer, for a request's headers
    to arrive, stands for the idle keep-alive time; its buffer for serve's 64 KiB header limit. It has no
    connection limit, and no deadline for a whole request (docs/server.md)."""
    return [sys.executable, "-m", "granian", "--interface", "wsgi", "--factory", "--host", HOST, "--port", "{port}",
            "--workers", "1", "--blocking-threads", str(threads), "--backlog", "2048", "--http", "1", "--no-ws",
            "--http1-buffer-size", str(64 * 1024), "--http1-header-read-timeout", str(IDLE_SECONDS * 1000),
            "--log-level", "warning", APP.removesuffix("()")]


@dataclass
class ConnectionRow:
    """A fresh client's wait while ``idle`` keep-alive and ``slow`` slow-header clients are connected."""

    server: str
    idle: int = 0
    idle_answered: int = 0
    slow: int = 0
    probes: list[float | None] = field(default_factory=list)
    wait: float = 0.0
    # GET /healthz while one keyed request waits on an idempotency store another process holds locked
    blocked_probes: list[float | None] = field(default_factory=list)
    # the server's own refusals (oversized header, bad request line, bad Content-Length): status and Content-Type
    refusals: list[str] = field(default_factory=list)
    not_applicable: str | None = None
    error: str | None = None

    @property
    def answered(self) -> list[float]:
        return sorted(p for p in self.probes if p is not None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe_connections(row: ConnectionRow, port: int, plan: Plan) -> None:
    cmd = [sys.executable, "-m", "benchmarks.connections", "--port", str(port), "--idle", str(plan.idle_clients),
           "--slow", str(plan.slow_clients), "--probes", str(plan.fresh_probes), "--wait", str(plan.probe_wait)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"connection probe failed ({done.returncode}):\n{done.stderr[-2000:]}")
        for name, value in json.loads(done.stdout).items():
            setattr(row, name, value)
    except (RuntimeError, ValueError, OSError, subprocess.SubprocessError) as exc:
        row.error = str(exc)


def _keyed_post(port: int, key: str) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        conn.request("POST", "/v1/messages", payload.single_json(),
                     {"Content-Type": "application/json", "Idempotency-Key": key})
        conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        pass  # only what it does to the other clients meanwhile is measured
    finally:
        conn.close()


def probe_blocked_store(row: ConnectionRow, server: HttpServer, probes: int, wait: float) -> None:
    """A blocking call in one request (SQLite waiting for a lock) and what it does to a fresh client."""
    _keyed_post(server.port, "bench-first")  # creates the store in the server's working directory
    store = Path(server.workdir.name) / STORE_FILE
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    waiting = threading.Thread(target=_keyed_post, args=(server.port, "bench-blocked"), daemon=True)
    try:
        waiting.start()
        time.sleep(0.5)
        if not waiting.is_alive():  # a probe of nothing: the lock was taken on a file the server does not use
            row.error = f"the keyed request was not held by the locked store ({STORE_FILE})"
            return
        row.blocked_probes = [probe(server.port, wait) for _ in range(probes)]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        waiting.join(60)


REFUSED = [b"GET /healthz HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
           b"GARBAGE\r\n\r\n", b"GET /healthz HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nContent-Length: nope\r\n\r\n"]


def probe_refusals(row: ConnectionRow, port: int, wait: float) -> None:
    """What the server itself answers to requests it cannot hand to the app: problem+json, as the API's own?"""
    for raw in REFUSED:
        try:
            with socket.create_connection((HOST, port), timeout=wait) as sock:
                sock.sendall(raw)
                head = sock.recv(65536).partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        except OSError as exc:
            row.refusals.append(f"no answer ({type(exc).__name__})")
            continue
        types = [line.split(":", 1)[1].strip() for line in head[1:] if line.lower().startswith("content-type:")]
        status = head[0].split(" ", 2)[1] if head[0].startswith("HTTP/") else "no answer"
        row.refusals.append(f"{status} {types[0] if types else 'no body type'}")


def server_group(plan: Plan) -> tuple[list[Row], list[ConnectionRow]]:
    threads = plan.server_threads or 8
    env = gateway_env(plan, "memory", None)
    rows, connection_rows = [], []
    for label, command, needs in candidates(threads):
        row = Row(GROUP, f"{label}, {plan.concurrency} clients", is_floor=command is None)
        connections = ConnectionRow(label)
        rows.append(row)
        connection_rows.append(connections)
        if needs is not None and importlib.util.find_spec(needs) is None:
            missing = f"n/a: {needs} is not installed (pip install -e '.[bench]')"
            row.not_applicable = connections.not_applicable = missing
            continue
        try:
            server = HttpServer("gateway", env, plan.server_threads, command=command)
        except RuntimeError as exc:
            row.error = connections.error = str(exc)
            continue
        try:
            measure([HttpScenario(row, server, None, "/v1/messages", payload.single_json(), 1, plan.messages,
                                  plan.concurrency)], plan.reps)
            probe_connections(connections, server.port, plan)
            probe_blocked_store(connections, server, max(2, plan.fresh_probes // 4), plan.probe_wait)
            probe_refusals(connections, server.port, plan.probe_wait)
        finally:
            server.stop()
    return rows, connection_rows


def connection_table(rows: list[ConnectionRow]) -> list[str]:
    lines = ["| Server | idle keep-alive connections answered | fresh clients answered | fresh client ms, "
             "median (max) | while one request waits on a locked store: answered, ms median (max) | own refusals "
             "(header too large, bad request line, bad Content-Length) |",
             "|---|---:|---:|---:|---:|---|"]
    for row in rows:
        if row.not_applicable or row.error:
            note = row.not_applicable or f"**ERROR** {(row.error or '').strip().splitlines()[-1:]}"
            lines.append(f"| {row.server} | {note} | | | | |")
            continue
        answered = row.answered
        blocked = sorted(p for p in row.blocked_probes if p is not None)
        lines.append(f"| {row.server} | {row.idle_answered} of {row.idle} | {len(answered)} of {len(row.probes)} "
                     f"| {_latency(answered, row.wait)} | {len(blocked)} of {len(row.blocked_probes)}: "
                     f"{_latency(blocked, row.wait)} | {'; '.join(row.refusals)} |")
    return lines


def _latency(answered: list[float], wait: float) -> str:
    if not answered:
        return f"none within {wait:g} s"
    return f"{answered[(len(answered) - 1) // 2]:,.1f} ({answered[-1]:,.1f})"
