"""Memory and disk of large raw messages in queued mode: ``mail-gateway serve`` (its delivery workers in-process,
an SQLite store) takes ``POST /v1/messages/raw`` requests of ``Plan.raw_mb`` MB messages, one and then four at
once, each on its own connection, and delivers them to an aiosmtpd sink.

Reported for each: the server's resident memory before, its peak (VmHWM, reset first) while it took and delivered
them, and its resident memory once they were delivered; the store's file and write-ahead log right after delivery
and once a compaction ran (``GATEWAY_STORE_COMPACT_INTERVAL``, short here; where this version has the setting).
A 503 (the store busy past its bound) is retried, as a client is told to, and counted.
"""

from __future__ import annotations

import base64
import json
import random
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.drive import Plan, gateway_env, post
from benchmarks.peak_memory import status_kib
from benchmarks.procs import HttpServer, Sink
from benchmarks.queued import request_json

MIB = 1024 * 1024
COUNTS = (1, 4)
SETTLE_SECONDS = 30.0  # the longest wait for deliveries to be recorded, and for the store to shrink
GROWTH_GOAL = 3.5  # peak growth over the messages' total size (tests/test_large_raw_queued.py holds the same)


@dataclass
class RawMemoryRow:
    messages: int
    message_kib: int
    before_kib: int | None = None
    peak_kib: int | None = None
    after_kib: int | None = None
    store_delivered_bytes: int | None = None  # the store's file and log once every message was delivered
    store_after_bytes: int | None = None  # the same once a compaction ran (or SETTLE_SECONDS passed)
    accepted: int | None = None
    sink_delta: int | None = None
    retried: int = 0  # 503s retried
    not_applicable: str | None = None
    error: str | None = None

    @property
    def growth_times(self) -> float | None:
        if self.before_kib is None or self.peak_kib is None:
            return None
        return (self.peak_kib - self.before_kib) / (self.messages * self.message_kib)

    @property
    def problems(self) -> list[str]:
        name = f"raw messages / {self.messages} at once"
        if self.error:
            return [f"{name}: ERROR {self.error}"]
        if self.not_applicable is None and not (self.accepted == self.sink_delta == self.messages):
            return [f"{name}: {self.accepted} accepted and the sink received {self.sink_delta}, of {self.messages}"]
        return []

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "growth_times": self.growth_times, "problems": self.problems}


def raw_message(seed: int, size: int) -> bytes:
    """About ``size`` bytes: a text part and a base64 attachment in lines of 988 characters (few lines for the
    sink to read), and no Date field, so the gateway adds one in front as it does for many clients."""
    head = (f"From: bench@example.com\r\nTo: sink@example.org\r\nSubject: raw {seed}\r\n"
            f"Message-ID: <raw-{seed}-{time.time_ns()}@example.com>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=part\r\n\r\n--part\r\nContent-Type: text/plain\r\n\r\n"
            "Attached.\r\n--part\r\nContent-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n").encode()
    tail = b"\r\n--part--\r\n"
    encoded = base64.b64encode(random.Random(seed).randbytes(max(size - len(head) - len(tail), 990) // 990 * 741))
    return head + b"\r\n".join(encoded[i:i + 988] for i in range(0, len(encoded), 988)) + tail


def raw_body(data: bytes) -> bytes:
    return json.dumps({"mail_from": "bench@example.com", "rcpt_to": ["sink@example.org"],
                       "data": base64.b64encode(data).decode("ascii")}).encode()


def store_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def wait_for(condition: Callable[[], bool], timeout: float = SETTLE_SECONDS) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def post_at_once(row: RawMemoryRow, port: int, bodies: list[bytes]) -> list[str]:
    """Every body at once, each on its own connection, 503s retried; the ids of those answered 202."""
    ids: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()

    def send(body: bytes) -> None:
        for _ in range(5):
            status, answer = post(port, "/v1/messages/raw", body)
            if status != 503:
                break
            with lock:
                row.retried += 1
        with lock:
            if status == 202:
                ids.append(json.loads(answer)["id"])
            else:
                failures.append(f"{status} {answer[:200].decode('utf-8', 'replace')}")

    threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError("; ".join(failures))
    return ids


def delivered(port: int, ids: list[str]) -> bool:
    return all(request_json(port, f"/v1/messages/{i}")[1].get("status") == "delivered" for i in ids)


def measure(plan: Plan, sink: Sink, count: int) -> RawMemoryRow:
    size = int(plan.raw_mb * MIB)
    row = RawMemoryRow(count, size // 1024)
    bodies = [raw_body(raw_message(seed, size)) for seed in range(count)]
    with tempfile.TemporaryDirectory(prefix="bench-raw-") as directory:
        store = Path(directory) / "store.sqlite3"
        env = gateway_env(plan, "smtp", sink, gateway_delivery="queued", gateway_store_url=f"sqlite:///{store}",
                          gateway_max_message_bytes=max(64 * MIB, 2 * len(bodies[0])),
                          gateway_store_compact_interval=0.5)
        try:
            server = HttpServer("gateway", env, plan.server_threads)
        except RuntimeError as exc:
            row.error = str(exc)
            return row
        try:
            _run(row, server, sink, store, bodies)
        except (RuntimeError, OSError, ValueError) as exc:
            row.error = str(exc)
        finally:
            server.stop()
    return row


def _run(row: RawMemoryRow, server: HttpServer, sink: Sink, store: Path, bodies: list[bytes]) -> None:
    pid, before = server.proc.pid, sink.count()
    status, _ = post(server.port, "/v1/messages/raw", b"{}")
    if status == 404:
        row.not_applicable = "n/a: this version has no POST /v1/messages/raw (404)"
        return
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM restarts from the current RSS
    row.before_kib = status_kib(pid, "VmRSS")
    ids = post_at_once(row, server.port, bodies)
    row.accepted = len(ids)
    row.sink_delta = sink.settled_count(before + len(ids), timeout=SETTLE_SECONDS) - before
    if not wait_for(lambda: delivered(server.port, ids)):
        raise RuntimeError(f"the messages were not all recorded delivered within {SETTLE_SECONDS:g} s")
    row.peak_kib = status_kib(pid, "VmHWM")
    row.store_delivered_bytes = store_bytes(store)
    wait_for(lambda: store_bytes(store) < MIB)  # a version without compaction keeps it all: reported as it is
    row.store_after_bytes = store_bytes(store)
    row.after_kib = status_kib(pid, "VmRSS")


def rows(plan: Plan, log: Callable[[str], None]) -> list[RawMemoryRow]:
    log(f"queued raw messages of {plan.raw_mb:g} MB: memory of serve and size of the store, {COUNTS} at once")
    sink = Sink("aiosmtpd", 0.0)
    try:
        found = [measure(plan, sink, count) for count in COUNTS]
    finally:
        sink.stop()
    for row in found:
        times = row.growth_times
        log(f"  {row.messages} at once: " + (f"peak +{times:.1f}× their size" if times is not None else
                                             (row.not_applicable or row.error or "?").strip()[-300:]))
    return found


def _mb(kib_or_bytes: int | None, per_mb: int, digits: int = 0) -> str:
    return "—" if kib_or_bytes is None else f"{kib_or_bytes / per_mb:.{digits}f}"


def table(plan: Plan, found: list[RawMemoryRow]) -> list[str]:
    lines = [f"## Queued raw messages of {plan.raw_mb:g} MB: memory of `serve`, size of the store", "",
             "`mail-gateway serve` in queued mode (delivery workers in-process, SQLite store) takes "
             "`POST /v1/messages/raw` requests (the message base64 in JSON, 4/3 of its size), all at once, and "
             "delivers them to the aiosmtpd sink. Growth: peak RSS (VmHWM) over RSS before, against the messages' "
             "total size. RSS after: once all were delivered. Store: its file and write-ahead log once all were "
             "delivered, then once a compaction ran (GATEWAY_STORE_COMPACT_INTERVAL=0.5).", "",
             "| At once | RSS before MB | peak MB | growth × size | RSS after MB | store delivered MB "
             "| store compacted MB | 503s retried | check |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in found:
        if row.growth_times is None:
            lines.append(f"| {row.messages} | {(row.not_applicable or row.error or '').strip()[-300:]} "
                         "| | | | | | | |")
            continue
        check = "**" + "; ".join(row.problems) + "**" if row.problems else "ok"
        memory = " | ".join(_mb(kib, 1024) for kib in (row.before_kib, row.peak_kib))
        store = " | ".join(_mb(size, MIB, 1) for size in (row.store_delivered_bytes, row.store_after_bytes))
        lines.append(f"| {row.messages} | {memory} | {row.growth_times:.1f} | {_mb(row.after_kib, 1024)} | {store} | "
                     f"{row.retried} | {check} |")
    measured = [r.growth_times for r in found if r.growth_times is not None]
    if measured:
        worst = max(measured)
        met = "yes" if worst < GROWTH_GOAL else f"no (over by {worst - GROWTH_GOAL:.1f}×)"
        lines += ["", f"Target: peak RSS growth < {GROWTH_GOAL:g}× the messages' size: {worst:.1f}× at worst, "
                      f"met: {met}."]
    return lines + [""]
