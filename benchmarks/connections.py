"""What idle and slow clients do to an HTTP server: ``--idle`` keep-alive connections that made one request and
went quiet, ``--slow`` clients sending one header line every two seconds and never finishing, then ``--probes``
fresh clients asking ``GET /healthz`` one after another, each given ``--wait`` seconds.

Prints a JSON report: how many idle connections were answered, each probe's latency (None: no answer in time).
Runs in its own process so its sockets and threads never share a GIL with the server it measures.
"""

from __future__ import annotations

import argparse
import json
import resource
import selectors
import socket
import sys
import threading
import time

HOST = "127.0.0.1"
DRIP_SECONDS = 2.0


def answered(sock: socket.socket) -> bool:
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return False
            data += chunk
    except OSError:
        return False
    return data.startswith(b"HTTP/1.1 200")


def count_answered(socks: list[socket.socket], wait: float) -> int:
    """How many of ``socks`` got a whole 200 response head within ``wait`` seconds in all."""
    selector, received, done = selectors.DefaultSelector(), {}, 0
    for sock in socks:
        selector.register(sock, selectors.EVENT_READ)
        received[sock] = b""
    deadline = time.monotonic() + wait
    while received and time.monotonic() < deadline:
        for key, _ in selector.select(max(deadline - time.monotonic(), 0)):
            sock = key.fileobj
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            received[sock] += chunk
            if not chunk or b"\r\n\r\n" in received[sock]:
                done += received.pop(sock).startswith(b"HTTP/1.1 200")
                selector.unregister(sock)
    selector.close()
    return done


def connect(port: int, data: bytes, wait: float) -> socket.socket | None:
    """A connection that sent ``data``; None when the server's backlog is full and it could not connect."""
    try:
        sock = socket.create_connection((HOST, port), timeout=wait)
        sock.sendall(data)
    except OSError:
        return None
    return sock


def probe(port: int, wait: float) -> float | None:
    start = time.perf_counter()
    try:
        with socket.create_connection((HOST, port), timeout=wait) as sock:
            sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode())
            ok = answered(sock)
    except OSError:
        return None
    return (time.perf_counter() - start) * 1000 if ok else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--wait", type=float, default=10.0)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.idle + args.slow + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    request = f"GET /healthz HTTP/1.1\r\nHost: {HOST}:{args.port}\r\n\r\n".encode()
    idle, slow, stop = [], [], threading.Event()
    try:
        for _ in range(args.idle):
            sock = connect(args.port, request, args.wait)
            if sock is not None:
                idle.append(sock)
        idle_answered = count_answered(idle, args.wait)
        for _ in range(args.slow):
            sock = connect(args.port, f"POST /v1/messages HTTP/1.1\r\nHost: {HOST}\r\n".encode(), args.wait)
            if sock is not None:
                slow.append(sock)

        def drip() -> None:
            while not stop.wait(DRIP_SECONDS):
                for sock in slow:
                    try:
                        sock.sendall(b"X-Slow: 1\r\n")
                    except OSError:
                        pass

        threading.Thread(target=drip, daemon=True).start()
        time.sleep(1.0)
        latencies: list[float | None] = []
        for _ in range(args.probes):
            latencies.append(probe(args.port, args.wait))
            if latencies[-3:] == [None, None, None]:
                break  # the server is not answering; waiting out the rest says nothing more
    finally:
        stop.set()
        for sock in idle + slow:
            sock.close()
    json.dump({"idle": args.idle, "idle_answered": idle_answered, "slow": args.slow,
               "probes": latencies, "wait": args.wait}, sys.stdout)


if __name__ == "__main__":
    main()
