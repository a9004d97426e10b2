"""Scale-out on PostgreSQL, measured in the same ``make bench`` run: the drain rate of a backlog with 1, 2 and 4
``mail-gateway worker`` processes against a sink adding 5 ms to every reply (latency-bound, so that scaling shows
on a small machine), and how idle workers learn of new work — LISTEN/NOTIFY against a poll — by the time from
202 to arrival and by what idle workers cost. The HTTP side is in ``benchmarks.scaling_http``.

PostgreSQL is a private cluster (``tests/postgres_server.py``) with its durable defaults (fsync on).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.drive import Plan, gateway_env
from benchmarks.procs import GATEWAY_MAIN, ROOT, CpuMeter, Sink, clean_env
from benchmarks.results import Row, Run

sys.path.insert(0, str(ROOT / "tests"))  # the suite's private-cluster helper serves the benchmarks too
from postgres_server import PostgresServer  # noqa: E402

DRAIN_GROUP = "scale-out: drain on PostgreSQL, asyncio sink +5 ms per reply"
PROCESSES = (1, 2, 4)
CONCURRENCY = 1  # messages each worker process delivers at once: one, so that latency, not CPU, bounds it


@dataclass
class Scale:
    """What the scale-out scenarios found: table rows, and lines of text for the wake-up comparison."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def enqueue(store: object, count: int) -> None:
    """A backlog of ``count`` messages written straight into the store (an open ``Store``), a thousand per
    transaction."""
    from benchmarks import payload
    from mail_gateway.store import messages

    data, now = payload.prebuilt_bytes(), time.time()
    for start in range(0, count, 1000):
        batch = [messages.NewMessage(messages.new_id(), f"<bench-{start + n}@example.com>", payload.SENDER,
                                     (payload.RECIPIENT,), data, "http", now, None, now + 86400)
                 for n in range(min(1000, count - start))]
        store.write(lambda conn, batch=batch: messages.enqueue(conn, batch))  # type: ignore[attr-defined]


def open_store(url: str) -> object:
    from mail_gateway.store.database import Store

    return Store(url).open()


def start_workers(n: int, env: dict[str, str], concurrency: int, workdir: Path) -> list[subprocess.Popen]:
    """``n`` worker processes, once each says its delivery workers run (their log goes to a file)."""
    command = [sys.executable, "-c", GATEWAY_MAIN, "worker", "--concurrency", str(concurrency)]
    logs = [workdir / f"worker-{time.monotonic_ns()}-{i}.log" for i in range(n)]
    procs = []
    for log in logs:
        with open(log, "w") as out:
            procs.append(subprocess.Popen(command, env=clean_env(**env), cwd=workdir, stdout=subprocess.DEVNULL,
                                          stderr=out))
    for proc, log in zip(procs, logs, strict=True):
        if not wait_for(lambda log=log, proc=proc: "delivery workers" in log.read_text() or proc.poll() is not None,
                        timeout=60) or proc.poll() is not None:
            stop_all(procs)
            raise RuntimeError(f"a worker did not start: {log.read_text()[-2000:]}")
    return procs


def stop_all(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def drain_run(pg: PostgresServer, sink: Sink, plan: Plan, processes: int, count: int, workdir: Path) -> Run:
    url = pg.create_store()
    env = gateway_env(plan, "smtp", sink, gateway_delivery="queued", gateway_store_url=url)
    procs, store = start_workers(processes, env, CONCURRENCY, workdir), open_store(url)
    try:
        time.sleep(0.5)  # idle: the backlog's NOTIFY wakes them
        before, meters = sink.count(), [CpuMeter(p.pid) for p in procs]
        for meter in meters:
            meter.start()
        started = time.perf_counter()
        enqueue(store, count)
        done = wait_for(lambda: sink.count() - before >= count, timeout=60 + count / 10)
        elapsed = time.perf_counter() - started
        cpu = sum(m.stop() or 0.0 for m in meters)
        delta = sink.settled_count(before + count) - before
    finally:
        stop_all(procs)
        store.close()  # type: ignore[attr-defined]
    return Run(elapsed, count, count if done else delta, delta, sender_cpu=cpu)


def drain_rows(pg: PostgresServer, plan: Plan, count: int, workdir: Path) -> list[Row]:
    sink = Sink("asyncio", 5.0)
    rows = [Row(DRAIN_GROUP, f"{n} worker process{'es' if n > 1 else ''} × {CONCURRENCY} at once",
                is_floor=n == 1) for n in PROCESSES]
    try:
        for _ in range(plan.reps):  # repetition by repetition, so a burst of load on the machine spreads out
            for n, row in zip(PROCESSES, rows, strict=True):
                try:
                    row.runs.append(drain_run(pg, sink, plan, n, count, workdir))
                except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                    row.error = str(exc)
    finally:
        sink.stop()
    return rows


def wake_latency(pg: PostgresServer, plan: Plan, samples: int, workdir: Path, **settings: object) -> list[float]:
    """Milliseconds from a message stored (by another process) to its arrival, one message at a time."""
    sink = Sink("asyncio", 0.0)
    url = pg.create_store()
    env = gateway_env(plan, "smtp", sink, gateway_delivery="queued", gateway_store_url=url, **settings)
    procs, store = start_workers(1, env, CONCURRENCY, workdir), open_store(url)
    found = []
    try:
        for _ in range(samples):
            time.sleep(0.15)  # idle again
            before = sink.count()
            enqueue(store, 1)
            stored = time.perf_counter()  # committed: where a client would hear 202
            if wait_for(lambda before=before: sink.count() > before, timeout=30):
                found.append((time.perf_counter() - stored) * 1000)
    finally:
        stop_all(procs)
        store.close()  # type: ignore[attr-defined]
        sink.stop()
    return found


def idle_cost(pg: PostgresServer, plan: Plan, seconds: float, workdir: Path, **settings: object) -> tuple[float,
                                                                                                        float]:
    """Transactions per second on the database and CPU share of four idle worker processes."""
    import psycopg

    url = pg.create_store()
    env = gateway_env(plan, "smtp", None, mail_server="127.0.0.1", gateway_delivery="queued",
                      gateway_store_url=url, **settings)
    procs = start_workers(4, env, CONCURRENCY, workdir)
    database = url.rsplit("/", 1)[1]

    def commits() -> int:
        with psycopg.connect(pg.conninfo(database)) as conn:
            return conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s",
                                (database,)).fetchone()[0]

    try:
        time.sleep(1.0)
        meters = [CpuMeter(p.pid) for p in procs]
        for meter in meters:
            meter.start()
        first = commits()
        time.sleep(seconds)
        rate = (commits() - first - 1) / seconds  # less the reading itself
        cpu = sum(m.stop() or 0.0 for m in meters) / seconds
    finally:
        stop_all(procs)
    return rate, cpu


WAKE_VARIANTS = [("LISTEN/NOTIFY (poll every 1 s besides)", {"gateway_queue_notify": "true"}),
                 ("poll every 0.2 s, no NOTIFY", {"gateway_queue_notify": "false",
                                                  "gateway_queue_poll_interval": "0.2"}),
                 ("poll every 1 s, no NOTIFY", {"gateway_queue_notify": "false"})]


def wake_notes(pg: PostgresServer, plan: Plan, samples: int, idle_seconds: float, workdir: Path) -> list[str]:
    lines = ["## scale-out: how idle workers learn of new work", "",
             f"One `worker` process; a message stored by another process when the worker is idle; {samples} "
             f"messages one at a time against the asyncio sink. Then four idle `worker` processes for "
             f"{idle_seconds:g} s: transactions per second they cost the database, and their CPU.", "",
             "| Wake-up | store → arrival ms, median (max) | idle: database transactions/s | idle: CPU of 4 "
             "processes |", "|---|---:|---:|---:|"]
    for label, settings in WAKE_VARIANTS:
        try:
            found = sorted(wake_latency(pg, plan, samples, workdir, **settings))
            rate, cpu = idle_cost(pg, plan, idle_seconds, workdir, **settings)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            lines.append(f"| {label} | **ERROR** {str(exc).splitlines()[-1:]} | | |")
            continue
        shown = f"{statistics.median(found):,.1f} ({found[-1]:,.1f})" if found else "none arrived"
        lines.append(f"| {label} | {shown}, {len(found)} of {samples} | {rate:,.1f} | {cpu * 100:.1f} % |")
    return [*lines, ""]
