"""The processes of ``serve --workers N``: connections spread over them (``mail_gateway.http.balance``), where a
burst of keep-alive connections, as a client's pool opens them, landed all on one process, which then did all the
work while the other idled; and a worker replaced after HUP has restarted them all. Real processes on loopback;
which process holds a connection is read from /proc, so the tests count connections and never time anything."""

from __future__ import annotations

import math
import os
import signal
import socket
import time
from pathlib import Path

from ingress_support import wait_until
from process_support import Process, children, gateway_env, metric, request, scrape
from smtp_server import HOST

from mail_gateway.http import balance
from mail_gateway.http.balance import ConnectionTable

BURSTS = 5
POOL = 16  # connections a client opens at once
HEALTH = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def held_by(pids: list[int], port: int) -> dict[int, int]:
    """How many connections to ``port`` each process holds the server's end of, in any state but listening: one
    the client closed counts until the process has closed it too, as the process itself counts it."""
    connections = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] != "0A":
            connections.add(f"socket:[{fields[9]}]")
    held = {}
    for pid in pids:
        links = []
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                links.append(os.readlink(fd))
            except OSError:  # closed meanwhile
                continue
        held[pid] = sum(link in connections for link in links)
    return held


def answered(sock: socket.socket) -> bool:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return False
        data += chunk
    return data.startswith(b"HTTP/1.1 200")


def pool_held(workers: list[int], port: int, size: int) -> dict[int, int]:
    """Open ``size`` keep-alive connections at once, as a client's pool does, have each answered, and say how
    many each process held; then close them and wait until no process holds any."""
    pool = [socket.create_connection((HOST, port), timeout=10) for _ in range(size)]
    try:
        for sock in pool:
            sock.sendall(HEALTH)
        assert all(answered(sock) for sock in pool)
        return held_by(workers, port)
    finally:
        for sock in pool:
            sock.close()
        wait_until(lambda: sum(held_by(workers, port).values()) == 0, "the pool's connections closed")


def test_serve_workers_spreads_each_burst_of_keep_alive_connections_over_its_processes(tmp_path) -> None:
    serve = Process(["serve", "--workers", "2"], gateway_env(gateway_env="testing", mail_backend="memory"), tmp_path)
    try:
        wait_until(lambda: len(children(serve.proc.pid)) == 2, "two HTTP processes")
        workers = children(serve.proc.pid)
        # Answering at all says one process is up; the other is serving once it takes a connection.
        wait_until(lambda: 0 not in pool_held(workers, serve.port, 2).values(), "both processes serving")
        for _ in range(BURSTS):
            held = pool_held(workers, serve.port, POOL)
            assert sum(held.values()) == POOL and max(held.values()) - min(held.values()) <= 2, held
        output = serve.output()
    finally:
        serve.stop()
    assert "Traceback" not in output


def test_a_process_leaves_the_next_connection_to_a_less_loaded_live_one_and_waits_for_no_other(monkeypatch) -> None:
    table = ConnectionTable(4)
    first = table.of(0)
    assert first.may_accept(5)  # no other process in the table
    second = table.of(1)  # a process starts, holding none
    assert not first.may_accept(5) and not first.may_accept(4)
    assert os.read(second.wake_fd, 100) == b"\0"  # woken once, as the first started to leave connections to it
    assert first.may_accept(1) and not first.may_accept(2)  # one more than the other's 0 is the slack
    assert os.read(second.wake_fd, 100) == b"\0"  # woken again: the first started to leave them again
    assert second.may_accept(3)  # each decision writes the process's own count, which the other reads
    assert first.may_accept(2)
    second.write(math.inf)  # stopping, or at its connection limit
    assert first.may_accept(50)
    table.of(2)  # a third process starts
    assert not first.may_accept(50)
    table.vacate(2)  # it ended
    assert first.may_accept(50)
    table.of(2)  # another starts in its row
    assert not first.may_accept(50)
    later = time.monotonic() + 60
    monkeypatch.setattr(balance.time, "monotonic", lambda: later)  # a minute on, it has written nothing: hung
    assert first.may_accept(50)
    assert table.free_row({0, 1, 2}) == 3 and table.free_row({0, 1, 2, 3}) is None


def test_after_hup_restarts_the_workers_one_that_dies_is_replaced_and_the_counts_go_on(tmp_path) -> None:
    """A worker HUP retired removed the directory every process counts metrics in, on its way out: the next
    worker to boot (a replacement, or one more with TTIN) failed, and took the master down with it."""
    message = {"from": "app@example.com", "to": ["a@example.com"], "text": "Hi"}
    serve = Process(["serve", "--workers", "2"], gateway_env(gateway_env="testing", mail_backend="memory"), tmp_path)
    try:
        wait_until(lambda: len(children(serve.proc.pid)) == 2, "two HTTP processes")
        first = children(serve.proc.pid)
        assert request(serve.port, "POST", "/v1/messages", message)[0] == 202
        serve.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: serve.proc.poll() is not None or
                   (len(now := children(serve.proc.pid)) == 2 and not set(now) & set(first)),
                   "two new HTTP processes, the first two gone")
        assert serve.proc.poll() is None, serve.output()
        killed = children(serve.proc.pid)[0]
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: serve.proc.poll() is not None or
                   (len(now := children(serve.proc.pid)) == 2 and killed not in now), "the killed process replaced")
        assert serve.proc.poll() is None, serve.output()
        assert request(serve.port, "POST", "/v1/messages", message)[0] == 202
        assert metric(scrape(serve.port), 'mail_gateway_http_requests_total{method="POST"') == 2
        output = serve.output()
    finally:
        serve.stop()
    assert "Traceback" not in output
