"""Drive one scenario's repetitions from the harness and check each against the sink's count."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from benchmarks.procs import HOST, CpuMeter, HttpServer, Sink, clean_env, read_line, run_loadgen
from benchmarks.results import Row, Run


@dataclass
class Plan:
    """How much to measure; ``make bench`` uses the defaults, ``--quick`` and ``--smoke`` shrink them."""

    reps: int = 3
    messages: int = 2000  # per repetition against a sink without added latency
    latency_messages: int = 200  # per repetition against a sink with added latency
    batch_size: int = 100
    concurrency: int = 8  # keep-alive clients for one message per request
    batch_concurrency: int = 4  # keep-alive clients for the batch route
    backlog: int = 10_000  # messages stored while no worker runs, then drained (queued delivery)
    server_threads: int | None = None  # None: the default of `mail-gateway serve`
    attachment_mb: float = 20.0
    raw_mb: float = 30.0  # each raw message of the queued memory scenario (benchmarks.raw_memory)
    sinks: list[tuple[str, float]] = field(
        default_factory=lambda: [("aiosmtpd", 0.0), ("asyncio", 0.0), ("asyncio", 5.0)]
    )
    settings: dict[str, str] = field(default_factory=dict)  # extra gateway settings, where the field exists
    idle_clients: int = 1000  # keep-alive connections left idle while a fresh client is timed (benchmarks.servers)
    slow_clients: int = 200  # clients sending their headers one line every two seconds, meanwhile
    fresh_probes: int = 20
    probe_wait: float = 10.0  # seconds each fresh client is given

    def messages_for(self, sink: Sink) -> int:
        return self.latency_messages if sink.latency_ms else self.messages


def known_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Only the settings this version of the gateway has (pool sizes and the like come and go)."""
    from mail_gateway.settings import GatewaySettings

    return {k: v for k, v in values.items() if k in GatewaySettings.model_fields}


def gateway_env(plan: Plan, backend: str, sink: Sink | None, **more: Any) -> dict[str, str]:
    values: dict[str, Any] = {"gateway_env": "production", "mail_backend": backend,
                              "gateway_allow_anonymous": "true"}
    if sink is not None:
        values.update(mail_server=HOST, mail_port=sink.port)
    values.update(plan.settings)
    values.update(more)
    return {k.upper(): str(v) for k, v in known_settings(values).items()}


def start_gateway(plan: Plan, backend: str, sink: Sink | None, **more: Any) -> HttpServer:
    """``mail-gateway serve`` as in production; should this version refuse that configuration (an API key it
    wants, say), the development environment with the same backend, so the figures still come."""
    try:
        return HttpServer("gateway", gateway_env(plan, backend, sink, **more), plan.server_threads)
    except RuntimeError as exc:
        print(f"  note: the gateway did not start in production ({exc}); trying development", file=sys.stderr)
        env = gateway_env(plan, backend, sink, **more)
        env["GATEWAY_ENV"] = "development"
        return HttpServer("gateway", env, plan.server_threads)


class LibraryScenario:
    """``benchmarks.scenarios.library <name>`` in its own process, kept running between its repetitions."""

    def __init__(self, row: Row, name: str, sink: Sink, plan: Plan) -> None:
        self.row, self.name, self.sink, self.n = row, name, sink, plan.messages_for(sink)
        self.cmd = [sys.executable, "-m", "benchmarks.scenarios.library", name, "--port", str(sink.port),
                    "--batch-size", str(plan.batch_size), "--settings", json.dumps(plan.settings)]
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        before = self.sink.count()
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=clean_env())
        with recorded_errors(self.row):
            warm = json.loads(read_line(self.proc, 120, self.row.name).removeprefix("READY "))
            delta = self.sink.settled_count(before + warm["accepted"]) - before
            self.row.warm_up.append(Run(0.0, warm["accepted"] + warm["failed"], warm["accepted"], delta))

    def rep(self) -> None:
        with recorded_errors(self.row):
            before, sink_cpu = self.sink.count(), CpuMeter(self.sink.proc.pid)
            sink_cpu.start()
            self.proc.stdin.write(f"run {self.n}\n")
            self.proc.stdin.flush()
            result = json.loads(read_line(self.proc, 60 + self.n, self.row.name))
            sink_seconds = sink_cpu.stop()
            delta = self.sink.settled_count(before + result["accepted"]) - before
            self.row.runs.append(Run(result["elapsed"], self.n, result["accepted"], delta,
                                     peak_rss_kib=result["peak_rss_kib"], sender_cpu=result["cpu"],
                                     sink_cpu=sink_seconds))

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class HttpScenario:
    """Load-generator runs of ``messages`` messages against a running server, ``per_request`` per request."""

    def __init__(self, row: Row, server: HttpServer, sink: Sink | None, path: str, body: bytes,
                 per_request: int, messages: int, concurrency: int) -> None:
        self.row, self.server, self.sink, self.path, self.body = row, server, sink, path, body
        self.per_request, self.concurrency = per_request, concurrency
        self.requests = max(1, messages // per_request)

    def _run(self, requests: int) -> Run:
        before = self.sink.count() if self.sink else 0
        meters = CpuMeter(self.server.proc.pid), CpuMeter(self.sink.proc.pid if self.sink else None)
        for meter in meters:
            meter.start()
        report = run_loadgen(self.server.port, self.path, self.body, requests, self.concurrency, {})
        server_cpu, sink_cpu = (meter.stop() for meter in meters)
        delta = self.sink.settled_count(before + report["accepted"]) - before if self.sink else None
        return Run(report["elapsed"], requests * self.per_request, report["accepted"], delta, report["p50_ms"],
                   report["p99_ms"], self.server.peak_rss_kib(), server_cpu, sink_cpu, report["failure_samples"])

    def start(self) -> None:
        with recorded_errors(self.row):
            self.row.warm_up.append(self._run(min(self.requests, self.concurrency * 2)))

    def rep(self) -> None:
        with recorded_errors(self.row):
            self.row.runs.append(self._run(self.requests))

    def stop(self) -> None:
        return None


@contextmanager
def recorded_errors(row: Row) -> Iterator[None]:
    """A scenario that breaks is reported in its row; the rest of the run goes on."""
    try:
        yield
    except (RuntimeError, ValueError, KeyError, OSError, subprocess.SubprocessError) as exc:
        row.error = str(exc)


def measure(scenarios: list[LibraryScenario | HttpScenario], reps: int) -> None:
    """Start (and warm up) every scenario, then run repetition after repetition of each in turn, so that a
    passing burst of load on a shared machine spreads over all of them rather than skewing one."""
    live = [s for s in scenarios if s.row.not_applicable is None and s.row.error is None]
    try:
        for scenario in live:
            scenario.start()
        for _ in range(reps):
            for scenario in live:
                if scenario.row.error is None:
                    scenario.rep()
    finally:
        for scenario in live:
            scenario.stop()


def post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def probe_route(row: Row, server: HttpServer, path: str, body: bytes) -> bool:
    """Whether ``path`` takes a real request; a missing route marks ``row`` n/a, any other refusal an error."""
    try:
        status, answer = post(server.port, path, body)
    except (OSError, http.client.HTTPException) as exc:
        row.error = f"{path} did not answer a one-message probe: {exc}"
        return False
    if status in (404, 405):
        row.not_applicable = f"n/a: this version has no {path} route ({status})"
    elif status >= 400:
        row.error = f"{path} refused a one-message probe with {status}: {answer[:300].decode('utf-8', 'replace')}"
    return status < 400
