"""Queued delivery (``GATEWAY_DELIVERY=queued``) in ``make bench``, against the same sinks as everything else.

- Accept: ``mail-gateway serve --no-worker`` answers ``POST /v1/messages`` once each message is durably stored;
  the rate is the load generator's, with no delivery competing for the CPU. After each run a ``mail-gateway
  worker`` drains what was accepted, so the run is checked against the sink's own count like every other.
- Drain: a backlog is stored while no worker runs (batch requests to ``serve --no-worker``); then a ``mail-gateway
  worker`` starts, and the rate is the backlog over the time from its start-up line to the sink's count
  reaching it. The check: the sink received exactly the backlog, and the store reports every message delivered.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import payload
from benchmarks.drive import HttpScenario, Plan, gateway_env, post, recorded_errors
from benchmarks.procs import GATEWAY_MAIN, HOST, CpuMeter, HttpServer, Sink, clean_env, run_loadgen
from benchmarks.results import Row, Run

POLL = 0.02
FILL_BATCH = 500  # the largest batch the gateway takes by default (GATEWAY_MAX_BATCH)


class QueuedGateway:
    """``serve --no-worker`` on a store of its own, and ``worker`` processes started on that store when asked."""

    def __init__(self, plan: Plan, sink: Sink) -> None:
        self.sink = sink
        self.dir = tempfile.TemporaryDirectory(prefix="bench-queue-")
        self.env = gateway_env(plan, "smtp", sink, gateway_delivery="queued",
                               gateway_store_url=f"sqlite:///{Path(self.dir.name) / 'store.sqlite3'}")
        command = [sys.executable, "-c", GATEWAY_MAIN, "serve", "--host", HOST, "--port", "{port}", "--no-worker"]
        if plan.server_threads:
            command += ["--threads", str(plan.server_threads)]
        try:
            self.server = HttpServer("gateway", self.env, None, command)
        except RuntimeError:
            self.dir.cleanup()
            raise

    def total(self, status: str) -> int:
        conn_status, body = request_json(self.server.port, f"/v1/messages?status={status}&limit=1")
        if conn_status != 200:
            raise RuntimeError(f"GET /v1/messages answered {conn_status}: {body}")
        return int(body["total"])

    def start_workers(self, count: int, timeout: float = 60.0) -> tuple[list[subprocess.Popen], float]:
        """``count`` ``mail-gateway worker`` processes, and when the first of them started delivering (its
        start-up line); returned once all have."""
        logs = [Path(self.dir.name) / f"worker-{time.monotonic_ns()}-{n}.log" for n in range(count)]
        procs = []
        for log in logs:
            with open(log, "w") as out:
                procs.append(subprocess.Popen([sys.executable, "-c", GATEWAY_MAIN, "worker"], cwd=self.dir.name,
                                              env=clean_env(**self.env), stdout=out, stderr=subprocess.STDOUT))
        first, deadline = None, time.monotonic() + timeout
        while not all("delivery workers" in log.read_text(errors="replace") for log in logs):
            if first is None and any("delivery workers" in log.read_text(errors="replace") for log in logs):
                first = time.perf_counter()
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                for proc in procs:
                    stop(proc)
                raise RuntimeError("a worker did not start:\n" + "\n".join(
                    log.read_text(errors="replace")[-1000:] for log in logs))
            time.sleep(POLL / 2)
        return procs, first if first is not None else time.perf_counter()

    def drain(self, before: int, expected: int) -> tuple[float, int, float | None, float | None]:
        """Run a worker until the sink has ``expected`` more than ``before``: (seconds from its start, the sink's
        delta, the worker's and the sink's CPU seconds meanwhile). (Two worker processes on one SQLite store
        drained no faster on two cores: they take turns at its one write lock.)"""
        procs, started = self.start_workers(1)
        meters = [CpuMeter(proc.pid) for proc in procs] + [CpuMeter(self.sink.proc.pid)]
        for meter in meters:
            meter.start()
        deadline = time.monotonic() + 60 + expected / 20
        try:
            while (self.sink.count() < before + expected and time.monotonic() < deadline
                   and all(p.poll() is None for p in procs)):
                time.sleep(POLL)
            elapsed = time.perf_counter() - started
            seconds = [meter.stop() for meter in meters]
        finally:
            for proc in procs:
                stop(proc)
        workers = None if None in seconds[:-1] else sum(seconds[:-1])
        return elapsed, self.sink.settled_count(before + expected) - before, workers, seconds[-1]

    def stop(self) -> None:
        self.server.stop()
        self.dir.cleanup()


def request_json(port: int, path: str) -> tuple[int, Any]:
    import http.client

    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()  # SIGTERM: the worker finishes what is in flight and releases the rest
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class QueuedAccept(HttpScenario):
    """The durable accept rate, one message per request; each run drained afterwards for the sink's check."""

    def __init__(self, row: Row, plan: Plan, sink: Sink) -> None:
        self.gateway: QueuedGateway | None = None
        with recorded_errors(row):
            self.gateway = QueuedGateway(plan, sink)
        super().__init__(row, self.gateway.server if self.gateway else None, sink, "/v1/messages",
                         payload.single_json(), 1, plan.messages_for(sink), plan.concurrency)

    def _run(self, requests: int) -> Run:
        before = self.sink.count()
        server_cpu = CpuMeter(self.server.proc.pid)
        server_cpu.start()
        report = run_loadgen(self.server.port, self.path, self.body, requests, self.concurrency, {})
        seconds = server_cpu.stop()
        _, delta, _, _ = self.gateway.drain(before, report["accepted"])
        return Run(report["elapsed"], requests, report["accepted"], delta, report["p50_ms"], report["p99_ms"],
                   self.server.peak_rss_kib(), seconds, None, report["failure_samples"])

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()


class QueuedDrain:
    """A backlog stored while no worker runs, then drained by one ``mail-gateway worker``."""

    def __init__(self, row: Row, plan: Plan, sink: Sink) -> None:
        self.row, self.sink, self.backlog = row, sink, plan.backlog
        self.gateway: QueuedGateway | None = None
        with recorded_errors(row):
            self.gateway = QueuedGateway(plan, sink)

    def start(self) -> None:
        return None

    def fill(self) -> int:
        """Store the backlog; how many the gateway answered queued."""
        stored = 0
        while stored < self.backlog:
            size = min(FILL_BATCH, self.backlog - stored)
            status, answer = post(self.gateway.server.port, "/v1/messages/batch", payload.batch_json(size))
            results = json.loads(answer).get("results", []) if status == 200 else []
            queued = sum(1 for r in results if r.get("status") == "queued")
            if queued != size:
                raise RuntimeError(f"filling the backlog: {queued} of {size} queued ({status} {answer[:300]!r})")
            stored += queued
        return stored

    def rep(self) -> None:
        with recorded_errors(self.row):
            delivered_before, before = self.gateway.total("delivered"), self.sink.count()
            stored = self.fill()
            if self.sink.count() != before or self.gateway.total("queued") != stored:
                raise RuntimeError("the backlog is not what was stored, or something delivered it already")
            elapsed, delta, cpu, sink_cpu = self.gateway.drain(before, stored)
            delivered = self.gateway.total("delivered") - delivered_before
            self.row.runs.append(Run(elapsed, self.backlog, delivered, delta, sender_cpu=cpu, sink_cpu=sink_cpu))

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
