"""Drive one scenario's repetitions from the harness and check each against the sink's count."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from benchmarks.procs import HOST, HttpServer, Sink, clean_env, read_line, run_loadgen
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
    server_threads: int | None = None  # None: the default of `mail-gateway serve`
    attachment_mb: float = 20.0
    sinks: list[tuple[str, float]] = field(
        default_factory=lambda: [("aiosmtpd", 0.0), ("asyncio", 0.0), ("asyncio", 5.0)]
    )
    settings: dict[str, str] = field(default_factory=dict)  # extra gateway settings, where the field exists

    def messages_for(self, sink: Sink) -> int:
        return self.latency_messages if sink.latency_ms else self.messages


def known_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Only the settings this version of the gateway has (pool sizes and the like come and go)."""
    from settings import GatewaySettings

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


def library_row(group: str, name: str, label: str, sink: Sink, plan: Plan, *, is_floor: bool = False) -> Row:
    """Run ``benchmarks.scenarios.library <name>`` in its own process, one ``run`` line per repetition."""
    row = Row(group, label, is_floor=is_floor)
    n = plan.messages_for(sink)
    cmd = [sys.executable, "-m", "benchmarks.scenarios.library", name, "--port", str(sink.port),
           "--batch-size", str(plan.batch_size), "--settings", json.dumps(plan.settings)]
    before = sink.count()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=clean_env())
    try:
        warm = json.loads(read_line(proc, 120, label).removeprefix("READY "))
        row.warm_up.append(Run(0.0, warm["accepted"] + warm["failed"], warm["accepted"],
                               sink.settled_count(before + warm["accepted"]) - before))
        for _ in range(plan.reps):
            before = sink.count()
            proc.stdin.write(f"run {n}\n")
            proc.stdin.flush()
            result = json.loads(read_line(proc, 60 + n, label))
            delta = sink.settled_count(before + result["accepted"]) - before
            row.runs.append(Run(result["elapsed"], n, result["accepted"], delta,
                                peak_rss_kib=result["peak_rss_kib"]))
    except (RuntimeError, ValueError, KeyError, OSError) as exc:
        row.error = str(exc)
    finally:
        if proc.poll() is None:
            proc.stdin.close()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return row


def post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def http_row(row: Row, server: HttpServer, sink: Sink | None, path: str, body: bytes, per_request: int,
             messages: int, concurrency: int, plan: Plan) -> Row:
    """Warm up, then ``plan.reps`` load-generator runs of ``messages`` messages against ``server``."""
    requests = max(1, messages // per_request)

    def one(count: int) -> Run:
        before = sink.count() if sink else 0
        report = run_loadgen(server.port, path, body, count, concurrency, {})
        delta = sink.settled_count(before + report["accepted"]) - before if sink else None
        return Run(report["elapsed"], count * per_request, report["accepted"], delta, report["p50_ms"],
                   report["p99_ms"], server.peak_rss_kib(), report["failure_samples"])

    try:
        row.warm_up.append(one(min(requests, concurrency * 2)))
        for _ in range(plan.reps):
            row.runs.append(one(requests))
    except (RuntimeError, ValueError, KeyError, OSError, subprocess.SubprocessError) as exc:
        row.error = str(exc)
    return row


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
