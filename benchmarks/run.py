"""The benchmark harness: ``python -m benchmarks.run`` (``make bench``) measures everything in one run.

Each sink (an SMTP server in its own process) is started once and every scenario of its group runs against
it: the smtplib floor first, then the Flask mail extensions, the gateway's backend as a library, and the
gateway over HTTP under waitress. Then the HTTP overhead alone (memory backend against a plain Flask route),
what DKIM signing costs (signed sends against unsigned ones), what a stored template costs (template
sends against plain ones) and the peak memory of a large attachment.
Every repetition is checked against the sink's own count.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

from benchmarks import payload, peak_memory, raw_memory, report
from benchmarks.drive import HttpScenario, LibraryScenario, Plan, measure, probe_route, start_gateway
from benchmarks.procs import HttpServer, Sink
from benchmarks.queued import QueuedAccept, QueuedDrain
from benchmarks.results import MemoryRow, Row
from benchmarks.scaling_http import scale_out
from benchmarks.servers import server_group
from benchmarks.signing import signing_group
from benchmarks.targets import QUEUED_ACCEPT, QUEUED_DRAIN
from benchmarks.templates import template_group

SERVERS_TITLE = "HTTP servers"
LIBRARY = [
    ("floor", "smtplib floor: one connection, pre-built bytes"),
    ("flask-mailman", "flask-mailman send_mail, per message"),
    ("flask-mailman-held", "flask-mailman, held connection"),
    ("flask-mail", "Flask-Mail mail.send, per message"),
    ("flask-mail-held", "Flask-Mail, held connection"),
    ("gateway-library", "gateway library: send_messages([msg]) per message"),
    ("gateway-library-batch", "gateway library: render + deliver_all"),
]


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def logged(row: Row) -> Row:
    if row.error:
        log(f"  {row.name}: ERROR {row.error.strip().splitlines()[-1] if row.error.strip() else ''}")
    elif row.not_applicable:
        log(f"  {row.name}: {row.not_applicable}")
    else:
        log(f"  {row.name}: " + ", ".join(f"{r:,.0f}" for r in row.rates) + " msgs/s")
    for problem in row.problems:
        log(f"  !!! {problem}")
    return row


def sink_group(kind: str, latency_ms: float, plan: Plan) -> list[Row]:
    sink = Sink(kind, latency_ms)
    group, n = sink.label, plan.messages_for(sink)
    log(f"{group} (port {sink.port}), {n} messages per run")
    scenarios: list[LibraryScenario | HttpScenario | QueuedDrain] = []
    queued: list[QueuedAccept | QueuedDrain] = []
    for name, label in LIBRARY:
        row = Row(group, label, is_floor=name == "floor")
        if name.startswith("flask-mail-") or name == "flask-mail":
            if importlib.util.find_spec("flask_mail") is None:
                row.not_applicable = "n/a: Flask-Mail is not installed (pip install -e '.[bench]')"
        scenarios.append(LibraryScenario(row, name, sink, plan))
    single = Row(group, f"gateway HTTP: 1 message/request, {plan.concurrency} clients")
    batch = Row(group, f"gateway HTTP: batch route, {plan.batch_size}/request, {plan.batch_concurrency} clients")
    server = None
    try:
        server = start_gateway(plan, "smtp", sink)
    except RuntimeError as exc:
        single.error = batch.error = str(exc)
    try:
        if server is not None:
            scenarios.append(HttpScenario(single, server, sink, "/v1/messages", payload.single_json(), 1, n,
                                          plan.concurrency))
            if probe_route(batch, server, "/v1/messages/batch", payload.batch_json(1)):
                # Enough requests that every client has at least two, whatever the batch size.
                batch_messages = max(n, plan.batch_size * plan.batch_concurrency * 2)
                scenarios.append(HttpScenario(batch, server, sink, "/v1/messages/batch",
                                              payload.batch_json(plan.batch_size), plan.batch_size,
                                              batch_messages, plan.batch_concurrency))
        queued = queued_scenarios(plan, sink)
        scenarios += queued
        measure(scenarios, plan.reps)
    finally:
        if server is not None:
            server.stop()
        sink.stop()
    rows = [s.row for s in scenarios if isinstance(s, LibraryScenario)] + [single, batch] + [s.row for s in queued]
    return [logged(row) for row in rows]


def queued_scenarios(plan: Plan, sink: Sink) -> list[QueuedAccept | QueuedDrain]:
    """Queued delivery: the durable accept rate (where no latency is added; it never touches the sink), and the
    drain of a backlog stored while no worker ran."""
    group = sink.label
    found: list[QueuedAccept | QueuedDrain] = []
    if not sink.latency_ms:
        found.append(QueuedAccept(Row(group, f"{QUEUED_ACCEPT}, {plan.concurrency} clients"), plan, sink))
    found.append(QueuedDrain(Row(group, f"{QUEUED_DRAIN} of {plan.backlog:,} stored while no worker ran, "
                                        "1 worker process"), plan, sink))
    return found


def overhead_group(plan: Plan) -> list[Row]:
    group = "HTTP overhead, no SMTP"
    log(group)
    servers, scenarios, rows = [], [], []
    try:
        for app, label in (("plain", "plain Flask JSON route"), ("gateway", "gateway HTTP, memory backend")):
            row = Row(group, f"{label}, {plan.concurrency} clients", is_floor=app == "plain")
            rows.append(row)
            try:
                server = (HttpServer(app, {}, plan.server_threads) if app == "plain"
                          else start_gateway(plan, "memory", None))
            except RuntimeError as exc:
                row.error = str(exc)
                continue
            servers.append(server)
            scenarios.append(HttpScenario(row, server, None, "/v1/messages", payload.single_json(), 1,
                                          plan.messages, plan.concurrency))
        measure(scenarios, plan.reps)
    finally:
        for server in servers:
            server.stop()
    return [logged(row) for row in rows]


def memory_rows(plan: Plan) -> list[MemoryRow]:
    log(f"peak memory, one message with a {plan.attachment_mb:g} MB attachment")
    sink = Sink("aiosmtpd", 0.0)
    try:
        rows = peak_memory.library_rows(sink, plan) + [peak_memory.http_row(sink, plan)]
    finally:
        sink.stop()
    for row in rows:
        growth = row.growth_kib
        log(f"  {row.sender}: " + (f"+{growth / 1024:.0f} MB" if growth is not None else
                                   (row.not_applicable or row.error or "?").strip()))
    return rows


def parse_args(argv: list[str] | None) -> tuple[Plan, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1",
                        help="fewer messages, for a look in about ten minutes on two cores (also BENCH_QUICK=1)")
    parser.add_argument("--smoke", action="store_true", help="a handful of messages: checks the harness works")
    parser.add_argument("--reps", type=int, help="repetitions per scenario (default 3)")
    parser.add_argument("--messages", type=int, help="messages per run without added latency (default 2000)")
    parser.add_argument("--threads", type=int, help="waitress threads (default: that of mail-gateway serve)")
    parser.add_argument("--setting", action="append", default=[], metavar="FIELD=VALUE",
                        help="an extra gateway setting, e.g. mail_pool_size=8 (ignored if this version lacks it)")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    parser.add_argument("--json", type=Path, help="also write the raw figures as JSON")
    args = parser.parse_args(argv)
    plan = Plan()
    if args.quick:
        plan.messages, plan.latency_messages, plan.backlog = 400, 60, 1000
        plan.raw_mb = 10.0
    if args.smoke:
        plan = Plan(reps=1, messages=6, latency_messages=4, batch_size=3, concurrency=2, batch_concurrency=2,
                    attachment_mb=0.25, sinks=[("aiosmtpd", 0.0), ("asyncio", 5.0)], idle_clients=20, slow_clients=5,
                    fresh_probes=2, probe_wait=2.0, backlog=20, raw_mb=2.0)
    plan.reps = args.reps or plan.reps
    plan.messages = args.messages or plan.messages
    plan.server_threads = args.threads
    plan.settings = dict(item.split("=", 1) for item in args.setting)
    return plan, args


def main(argv: list[str] | None = None) -> int:
    plan, args = parse_args(argv)
    for name in [n for n in os.environ if n.upper().startswith(("MAIL_", "GATEWAY_"))]:
        del os.environ[name]  # the run is configured by its settings alone, never by the shell's
    from benchmarks.drive import known_settings

    for name in sorted(set(plan.settings) - set(known_settings(plan.settings))):
        log(f"note: this version has no setting {name!r}; it is left out")
    started = time.time()
    rows: list[Row] = []
    for kind, latency in plan.sinks:
        rows += sink_group(kind, latency, plan)
    rows += overhead_group(plan)
    rows += [logged(row) for row in signing_group(plan)]
    rows += [logged(row) for row in template_group(plan)]
    log(f"{SERVERS_TITLE}: {plan.idle_clients} idle and {plan.slow_clients} slow clients")
    server_rows, connections = server_group(plan)
    rows += [logged(row) for row in server_rows]
    scale = scale_out(plan, log)  # several processes on PostgreSQL: benchmarks.scaling, benchmarks.scaling_http
    rows += [logged(row) for row in scale.rows]
    memory = memory_rows(plan)
    raw = raw_memory.rows(plan, log)
    text = report.markdown(plan, rows, memory, started, " ".join(sys.argv[1:] if argv is None else argv),
                           connections, raw) + "\n" + "\n".join(scale.notes)
    args.output.write_text(text)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"rows": [r.to_dict() for r in rows], "memory": [m.to_dict() for m in memory],
                                         "connections": [c.to_dict() for c in connections],
                                         "raw_memory": [r.to_dict() for r in raw]}, indent=1))
    problems = [p for r in rows for p in r.problems] + [p for m in memory + raw for p in m.problems]
    for problem in problems:
        log(f"!!! {problem}")
    log(f"wrote {args.output} in {time.time() - started:.0f} s" + (f"; {len(problems)} PROBLEMS" if problems else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
