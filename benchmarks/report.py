"""Write a run's figures as Markdown: machine, settings, one table per sink, the targets, peak memory."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

from benchmarks.drive import Plan
from benchmarks.raw_memory import RawMemoryRow
from benchmarks.raw_memory import table as raw_table
from benchmarks.results import MemoryRow, Row, ratio
from benchmarks.servers import GROUP as SERVERS_GROUP
from benchmarks.servers import ConnectionRow, connection_table
from benchmarks.signing import GROUP as SIGNING_GROUP
from benchmarks.signing import cost_note
from benchmarks.targets import reaches, targets

PACKAGES = ["mail-gateway", "flask", "flask-mailman", "flask-mail", "waitress", "gunicorn", "gevent", "aiosmtpd",
            "pydantic", "pydantic-settings", "werkzeug"]



def version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=10).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(plan: Plan, started: float, command: str) -> list[str]:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, {time.time() - started:.0f} s: "
        + (f"`python -m benchmarks.run {command}`" if command else "`make bench` (`python -m benchmarks.run`)"),
        "",
        f"- Machine: {os.cpu_count()} CPUs ({cpu_model()}), {platform.system()} {platform.release()}, "
        f"load average {load} at the end (the machine may be shared: compare ratios within this run)",
        f"- Python {platform.python_version()}; " + ", ".join(f"{p} {version(p)}" for p in PACKAGES)
        + f"; commit {commit()}",
        f"- {plan.reps} repetitions per scenario; {plan.messages} messages per repetition "
        f"({plan.latency_messages} with added latency); batch size {plan.batch_size}; "
        f"waitress threads: {plan.server_threads or 'the mail-gateway serve default'}; "
        f"extra settings: {plan.settings or 'none'}",
        "- Messages: ~1 KB of text, one recipient. Each sink is its own process; the HTTP load generator too.",
    ]


def group_table(rows: list[Row]) -> list[str]:
    floor = next((r for r in rows if r.is_floor), None)
    lines = ["| Scenario | msgs/s median (min–max) | × floor (min–max) | p50 ms | p99 ms | sender CPU µs/msg "
             "| sink CPU µs/msg (cores) | peak RSS MB | check |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        if not row.measured:
            note = row.not_applicable or f"**ERROR** {(row.error or '').strip().splitlines()[-1:] or ''}"
            lines.append(f"| {row.name} | {note} | | | | | | | |")
            continue
        median = row.median_run
        rate = f"{row.median_rate:,.0f} ({min(row.rates):,.0f}–{max(row.rates):,.0f})"
        latency = [f"{v:.1f}" if v is not None else "—" for v in (median.p50_ms, median.p99_ms)]
        rss = f"{row.peak_rss_kib / 1024:.0f}" if row.peak_rss_kib else "—"
        sender_us, sink_us = row.cpu_per_message(), row.cpu_per_message(sink=True)
        sender = f"{sender_us:,.0f}" if sender_us is not None else "—"
        sink = f"{sink_us:,.0f} ({median.sink_cpu / median.elapsed:.2f})" if sink_us is not None else "—"
        check = "**MISMATCH: " + "; ".join(row.problems) + "**" if row.problems else "ok"
        lines.append(f"| {row.name} | {rate} | {'floor' if row.is_floor else ratio(row, floor)[1]} | "
                     f"{latency[0]} | {latency[1]} | {sender} | {sink} | {rss} | {check} |")
    return lines


def sink_bound(rows: list[Row]) -> list[str]:
    """What the sink itself allows: its CPU per message in the floor run caps every sender."""
    floor = next((r for r in rows if r.is_floor and r.measured), None)
    run = floor.median_run if floor else None
    us = run.per_message_us(run.sink_cpu) if run else None
    # Only where the sink is busy enough to be a bound, and the run long enough for the clock's ticks.
    if not us or run.elapsed < 0.5 or run.sink_cpu / run.elapsed < 0.2:
        return []
    cap = 1e6 / us
    return [f"The sink spent {us:,.0f} µs of CPU per message in the floor run ({run.sink_cpu / run.elapsed:.2f} of a "
            f"core): as one process on one core it cannot take more than ~{cap:,.0f} msgs/s from any sender, "
            f"{cap / floor.median_rate:.1f}× this floor.", ""]


def memory_table(memory: list[MemoryRow]) -> list[str]:
    lines = ["| Sender | RSS before MB | peak MB | growth MB | × attachment | check |", "|---|---:|---:|---:|---:|---|"]
    for m in memory:
        if m.growth_kib is None:
            lines.append(f"| {m.sender} | {(m.not_applicable or m.error or '').strip()[-300:]} | | | | |")
            continue
        check = "**" + "; ".join(m.problems) + "**" if m.problems else "ok"
        lines.append(f"| {m.sender} | {m.before_kib / 1024:.0f} | {m.peak_kib / 1024:.0f} | "
                     f"{m.growth_kib / 1024:.0f} | {m.growth_kib / m.attachment_kib:.1f} | {check} |")
    return lines


def markdown(plan: Plan, rows: list[Row], memory: list[MemoryRow], started: float, command: str,
             connections: list[ConnectionRow] = (), raw: list[RawMemoryRow] = ()) -> str:
    out = ["# Benchmark results", "", *machine(plan, started, command), ""]
    problems = [p for r in rows for p in r.problems] + [p for m in [*memory, *raw] for p in m.problems]
    if problems:
        out += ["## PROBLEMS: messages lost, doubled or not accepted", "", *(f"- **{p}**" for p in problems), ""]
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    for group, members in groups.items():
        out += [f"## {group}", "", *group_table(members), "", *sink_bound(members)]
        out += cost_note(members) if group == SIGNING_GROUP else []
        if group == SERVERS_GROUP and connections:
            out += [f"With {plan.idle_clients} keep-alive connections left idle after one request each and "
                    f"{plan.slow_clients} clients sending one header line every 2 s, {plan.fresh_probes} fresh "
                    f"clients ask `GET /healthz` one after another, each given {plan.probe_wait:g} s; then the same "
                    "while one request with an `Idempotency-Key` waits on a store another process holds locked:", "",
                    *connection_table(connections), ""]
    out += [f"## Peak memory: one message with a {plan.attachment_mb:g} MB attachment", "",
            "Growth of the sending process's resident memory over what it held before the send "
            "(the attachment's bytes included), to the peak during it.", "", *memory_table(memory), ""]
    out += raw_table(plan, raw) if raw else []
    out += ["## Targets", "", *targets(rows, memory), "", *reaches(rows)]
    out += ["Ratios are to the floor measured against the same sink in this run (median of the repetitions); "
            "\"check\" compares, for every run and warm-up, the messages reported accepted with the messages the "
            "sink received.", ""]
    return "\n".join(out)
