"""Scale-out, in the same ``make bench`` run (``scale_out``: the drain and wake-up figures of ``benchmarks.scaling``
and these): ``serve --workers 2`` against ``--workers 1`` accepting
queued messages (1 per request, durable), on SQLite and on PostgreSQL side by side; and direct delivery over
HTTP with ``--workers 2`` against the smtplib floor on the cheap asyncio sink. Every accept run is checked
against the store's own count of messages, every direct run against the sink's."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import payload
from benchmarks.drive import HttpScenario, LibraryScenario, Plan, gateway_env, measure, recorded_errors
from benchmarks.procs import GATEWAY_MAIN, HOST, CpuMeter, HttpServer, Sink, run_loadgen
from benchmarks.results import Row, Run
from benchmarks.scaling import DRAIN_GROUP, PostgresServer, Scale, drain_rows, wake_notes

ACCEPT_GROUP = "scale-out: HTTP accept, queued, 1 message/request"
DIRECT_GROUP = "scale-out: direct over HTTP, asyncio sink"
WORKERS = (1, 2)


def serve_command(plan: Plan, workers: int, *more: str) -> list[str]:
    command = [sys.executable, "-c", GATEWAY_MAIN, "serve", "--host", HOST, "--port", "{port}",
               "--workers", str(workers), *more]
    return command + (["--threads", str(plan.server_threads)] if plan.server_threads else [])


def stored(url: str) -> int:
    from sqlalchemy import func, select

    from mail_gateway.store.database import Store
    from mail_gateway.store.schema import messages

    store = Store(url, pool_size=1)
    try:
        return store.read(lambda conn: conn.execute(select(func.count()).select_from(messages)).scalar_one())
    finally:
        store.close()


def accept_run(server: HttpServer, url: str, requests: int, concurrency: int) -> Run:
    before, meter = stored(url), CpuMeter(server.proc.pid)
    meter.start()
    report = run_loadgen(server.port, "/v1/messages", payload.single_json(), requests, concurrency, {})
    cpu = meter.stop()
    return Run(report["elapsed"], requests, report["accepted"], stored(url) - before, report["p50_ms"],
               report["p99_ms"], server.peak_rss_kib(), cpu, None, report["failure_samples"])


def accept_rows(pg: PostgresServer, plan: Plan) -> list[Row]:
    """Each of the four servers started once, then repetition by repetition in turn."""
    workdir = tempfile.TemporaryDirectory(prefix="bench-accept-")
    servers: list[tuple[Row, HttpServer | None, str]] = []
    try:
        for engine in ("SQLite", "PostgreSQL"):
            for workers in WORKERS:
                row = Row(ACCEPT_GROUP, f"serve --workers {workers}, {engine}, {plan.concurrency} clients",
                          is_floor=(engine, workers) == ("SQLite", 1))
                url = (pg.create_store() if engine == "PostgreSQL"
                       else f"sqlite:///{Path(workdir.name) / f'store-{workers}.sqlite3'}")
                env = gateway_env(plan, "smtp", None, mail_server=HOST, gateway_delivery="queued",
                                  gateway_store_url=url)
                server = None
                with recorded_errors(row):
                    server = HttpServer("gateway", env, None, serve_command(plan, workers, "--no-worker"))
                servers.append((row, server, url))
        for row, server, url in servers:
            if server is not None:
                with recorded_errors(row):
                    row.warm_up.append(accept_run(server, url, plan.concurrency * 4, plan.concurrency))
        for _ in range(plan.reps):
            for row, server, url in servers:
                if server is not None and row.error is None:
                    with recorded_errors(row):
                        row.runs.append(accept_run(server, url, plan.messages, plan.concurrency))
    finally:
        for _, server, _ in servers:
            if server is not None:
                server.stop()
        workdir.cleanup()
    return [row for row, _, _ in servers]


def direct_rows(plan: Plan) -> list[Row]:
    sink = Sink("asyncio", 0.0)
    floor = Row(DIRECT_GROUP, "smtplib floor: one connection, pre-built bytes", is_floor=True)
    scenarios: list[LibraryScenario | HttpScenario] = [LibraryScenario(floor, "floor", sink, plan)]
    servers, rows = [], [floor]
    try:
        for workers in WORKERS:
            row = Row(DIRECT_GROUP, f"gateway HTTP direct, serve --workers {workers}, {plan.concurrency} clients")
            rows.append(row)
            with recorded_errors(row):
                server = HttpServer("gateway", gateway_env(plan, "smtp", sink), None, serve_command(plan, workers))
                servers.append(server)
                scenarios.append(HttpScenario(row, server, sink, "/v1/messages", payload.single_json(), 1,
                                              plan.messages, plan.concurrency))
        measure(scenarios, plan.reps)
    finally:
        for server in servers:
            server.stop()
        sink.stop()
    return rows


def settle() -> None:
    """A pause between groups, so that one group's clean-up does not load the next one's first run."""
    time.sleep(1.0)


TARGETS = [(DRAIN_GROUP, "2 worker processes", 1.8), (DRAIN_GROUP, "4 worker processes", 3.2),
           (DIRECT_GROUP, "gateway HTTP direct, serve --workers 2", 1.0)]
# The HTTP targets whose reach the report works out from CPU per message: group, row, goal, server processes.
REACH = [(DIRECT_GROUP, "gateway HTTP direct, serve --workers 2", 1.0, 2)]


def target_notes(rows: list[Row]) -> list[str]:
    lines = ["## scale-out: targets", "", "| Target | Measured | Met |", "|---|---:|---|"]
    for group, prefix, goal in TARGETS:
        members = [r for r in rows if r.group == group]
        floor = next((r for r in members if r.is_floor and r.measured), None)
        row = next((r for r in members if r.name.startswith(prefix) and r.measured), None)
        if floor is None or row is None or not floor.median_rate:
            lines.append(f"| {prefix}, {group}: ≥ {goal:g}× {floor.name if floor else 'the first row'} | not "
                         "measured | — |")
            continue
        value = row.median_rate / floor.median_rate
        met = "yes" if value >= goal else f"no (short by {goal - value:.2f}×)"
        lines.append(f"| {prefix}, {group}: ≥ {goal:g}× {floor.name} | {value:.2f}× | {met} |")
    return [*lines, ""]


def scale_out(plan: Plan, log: Callable[[str], None]) -> Scale:
    """Every scale-out scenario, on one private PostgreSQL cluster with its durable defaults."""
    scale = Scale()
    pg = PostgresServer(durable=True).start()
    workdir = tempfile.TemporaryDirectory(prefix="bench-scale-")
    try:
        log(DRAIN_GROUP)
        scale.rows += drain_rows(pg, plan, plan.messages, Path(workdir.name))
        samples = max(2, min(20, plan.messages // 100))
        idle = 10.0 if plan.messages >= 2000 else (5.0 if plan.messages >= 400 else 1.0)
        log(f"scale-out: wake-up, {samples} messages one at a time, {idle:g} s idle")
        scale.notes += wake_notes(pg, plan, samples, idle, Path(workdir.name))
        settle()
        log(ACCEPT_GROUP)
        scale.rows += accept_rows(pg, plan)
        settle()
        log(DIRECT_GROUP)
        scale.rows += direct_rows(plan)
    finally:
        pg.stop()
        workdir.cleanup()
    scale.notes += target_notes(scale.rows)
    return scale
