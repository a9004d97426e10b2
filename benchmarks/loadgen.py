"""An HTTP load generator: ``--concurrency`` keep-alive connections post one body ``--requests`` times in all.

Hand-written on asyncio streams rather than http.client, whose per-response header parsing (the email
package) costs more than a small gateway request and would make the client the bottleneck on two cores.
Prints a JSON report: wall time, status counts, messages the responses report accepted, p50/p99 latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter

HOST = "127.0.0.1"


def accepted_in(status: int, body: bytes) -> tuple[int, int]:
    """(accepted, failed) messages in one response: a batch's ``results`` or one message's 2xx."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        ok = sum(1 for r in data["results"] if isinstance(r, dict) and r.get("status") == "accepted")
        return ok, len(data["results"]) - ok
    if 200 <= status < 300:
        return 1, 0
    return 0, 1


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def ensure_open(self) -> None:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        await self.ensure_open()
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunked()
        else:
            body = await self.reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            self.writer.close()
            self.reader = self.writer = None
        return status, body

    async def _chunked(self) -> bytes:
        body = bytearray()
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            body += await self.reader.readexactly(size + 2)
            if size == 0:
                return bytes(body[:-2])
            del body[-2:]


async def run(port: int, raw: bytes, requests: int, concurrency: int) -> dict:
    connections = [Connection(port) for _ in range(concurrency)]
    await asyncio.gather(*(c.ensure_open() for c in connections))
    remaining = requests
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    totals = {"accepted": 0, "failed": 0}
    samples: list[str] = []

    async def client(conn: Connection) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            status, body = await conn.request(raw)
            latencies.append(time.perf_counter() - start)
            statuses[status] += 1
            ok, failed = accepted_in(status, body)
            totals["accepted"] += ok
            totals["failed"] += failed
            if failed and len(samples) < 3:
                samples.append(f"{status} {body[:300].decode('utf-8', 'replace')}")

    start = time.perf_counter()
    await asyncio.gather(*(client(c) for c in connections))
    elapsed = time.perf_counter() - start
    for conn in connections:
        if conn.writer is not None:
            conn.writer.close()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0

    return {"elapsed": elapsed, "requests": len(latencies), "statuses": dict(statuses),
            "accepted": totals["accepted"], "failed": totals["failed"], "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "failure_samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/v1/messages")
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args()
    with open(args.body_file, "rb") as f:
        body = f.read()
    head = [f"POST {args.path} HTTP/1.1", f"Host: {HOST}:{args.port}", "Content-Type: application/json",
            f"Content-Length: {len(body)}", *args.header]
    raw = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    report = asyncio.run(run(args.port, raw, args.requests, min(args.concurrency, max(args.requests, 1))))
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
