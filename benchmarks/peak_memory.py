"""Peak resident memory of sending one message with a large attachment: as a library and over HTTP."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks import payload
from benchmarks.drive import Plan, post, start_gateway
from benchmarks.procs import Sink, clean_env, run_loadgen
from benchmarks.results import MemoryRow


def status_kib(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def library_rows(sink: Sink, plan: Plan) -> list[MemoryRow]:
    rows = []
    for sender in ("gateway-library", "flask-mailman-held"):
        row = MemoryRow(sender, int(plan.attachment_mb * 1024))
        before = sink.count()
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.scenarios.attachment", sender, "--port", str(sink.port),
             "--mb", str(plan.attachment_mb), "--settings", json.dumps(plan.settings)],
            capture_output=True, text=True, env=clean_env(), timeout=300,
        )
        if done.returncode != 0:
            row.error = done.stderr[-1500:]
        else:
            result = json.loads(done.stdout)
            row.before_kib, row.peak_kib, row.accepted = result["before_kib"], result["peak_kib"], result["accepted"]
            # The child's warm-up message is one more than the attachment message it reports.
            row.sink_delta = sink.settled_count(before + 2) - before - 1
        rows.append(row)
    return rows


def attachment_body(size: int) -> bytes:
    content = base64.b64encode(os.urandom(size)).decode("ascii")
    attachment = {"filename": "attachment.bin", "content": content, "content_type": "application/octet-stream"}
    return json.dumps({**payload.request_body(), "attachments": [attachment]}).encode()


def http_row(sink: Sink, plan: Plan) -> MemoryRow:
    """The gateway server's RSS growth while it takes and sends one message with the attachment."""
    size = int(plan.attachment_mb * 1024 * 1024)
    row = MemoryRow("gateway over HTTP", size // 1024)
    limit = str(max(64 * 1024 * 1024, 4 * size))  # a body limit, where the gateway has one, that lets it in
    try:
        server = start_gateway(plan, "smtp", sink, gateway_max_message_bytes=limit, gateway_max_body_bytes=limit)
    except RuntimeError as exc:
        row.error = str(exc)
        return row
    try:
        status, answer = post(server.port, "/v1/messages", attachment_body(1024))
        if status == 422 and b'"attachments"' in answer:
            row.not_applicable = "n/a: this version's POST /v1/messages takes no attachments (422)"
            return row
        if status >= 400:
            detail = answer[:300].decode("utf-8", "replace")
            row.error = f"a message with a small attachment was refused: {status} {detail}"
            return row
        row.before_kib = status_kib(server.proc.pid, "VmRSS")
        try:
            Path(f"/proc/{server.proc.pid}/clear_refs").write_text("5")  # restart VmHWM from the current RSS
        except OSError:
            pass  # VmHWM then also covers start-up, which only overstates the growth
        before = sink.count()
        report = run_loadgen(server.port, "/v1/messages", attachment_body(size), 1, 1, {})
        row.peak_kib = status_kib(server.proc.pid, "VmHWM")
        row.accepted = report["accepted"]
        row.sink_delta = sink.settled_count(before + 1) - before
        if report["failed"]:
            row.error = "; ".join(report["failure_samples"])
    except (RuntimeError, OSError, ValueError) as exc:
        row.error = str(exc)
    finally:
        server.stop()
    return row
