"""The production HTTP server: waitress, tuned so that hostile or merely idle clients cannot starve the API
(its extended classes are in ``channels``).

Why waitress (figures: docs/cli.md and ``benchmarks/RESULTS.md``): it reads every request, headers
and body, on its event loop before a worker thread sees it, so slow or idle clients cost a file descriptor
each and never a thread. Left at its defaults it stops accepting after 100 connections and keeps an idle one
for 120 s, so ``HttpService`` sets the connection limit (``GATEWAY_HTTP_MAX_CONNECTIONS``), the idle
keep-alive time (``GATEWAY_HTTP_IDLE_TIMEOUT``) and ``poll()`` instead of ``select()``, and adds what waitress
lacks: a deadline for a whole request to arrive (``GATEWAY_HTTP_REQUEST_TIMEOUT``, answered 408), and the
server's own refusals (body too large, bad request line, header too long) as problem+json. granian, faster, was
held to the same tests (``pytest tests/test_http_server.py --http-server=granian``) and could keep neither of
these, nor a graceful stop with two processes (docs/server.md).

``HttpService`` serves sockets bound beforehand, so a prefork master (``serve --workers``) can bind once and
hand the same listening sockets to every worker process, each running one ``HttpService``.
"""

from __future__ import annotations

import math
import os
import resource
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.task import ThreadedTaskDispatcher
from waitress.wasyncore import poll2

from mail_gateway.errors import ConfigurationError
from mail_gateway.http.balance import HEARTBEAT_SECONDS, ProcessRow, Woken
from mail_gateway.http.channels import DeadlineServer, late_response
from mail_gateway.http.limits import MAX_HEADER_BYTES

if TYPE_CHECKING:
    from mail_gateway.settings import GatewaySettings

# Descriptors beside the HTTP connections: the listening socket, SMTP pool connections, ingress sessions, logs.
SPARE_FILES = 256
BACKLOG = 2048
GRACEFUL_SECONDS = 30  # what the requests under way get to finish after TERM


def adjustments(settings: GatewaySettings, threads: int) -> dict[str, Any]:
    idle, deadline = settings.gateway_http_idle_timeout, settings.gateway_http_request_timeout
    return {
        "threads": threads,
        "connection_limit": settings.gateway_http_max_connections,
        "channel_timeout": idle,
        # How often idle connections and late requests are looked for: a fraction of the shorter limit.
        "cleanup_interval": max(0.1, min(1.0, min(idle, deadline) / 4)),
        # select() cannot watch a descriptor numbered 1024 or more; poll() has no such limit.
        "asyncore_use_poll": True,
        "backlog": BACKLOG,
        # waitress would otherwise read bodies of up to 1 GiB before the app's own 413 could refuse them.
        "max_request_body_size": settings.gateway_max_message_bytes,
        "max_request_header_size": MAX_HEADER_BYTES,
        "ident": "mail-gateway",
    }


def ensure_open_files(needed: int) -> None:
    """Raise this process's soft limit on open files to ``needed`` (up to the hard limit), or refuse."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise ConfigurationError(
            f"GATEWAY_HTTP_MAX_CONNECTIONS needs about {needed} open files but this process may open at most "
            f"{hard} (ulimit -Hn); lower GATEWAY_HTTP_MAX_CONNECTIONS or raise the limit",
            variable="GATEWAY_HTTP_MAX_CONNECTIONS")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def bind(host: str, port: int) -> socket.socket:
    try:
        family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=BACKLOG)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); set GATEWAY_HOST/GATEWAY_PORT or pass "
            "--host/--port", variable="GATEWAY_PORT") from exc


class HttpService:
    """The WSGI app served on listening sockets by one event loop and ``threads`` worker threads."""

    def __init__(self, app: Any, settings: GatewaySettings, *, threads: int = 8,
                 sockets: Sequence[socket.socket] | None = None, tick: Callable[[], None] | None = None,
                 graceful_seconds: float = GRACEFUL_SECONDS, balance: ProcessRow | None = None) -> None:
        """``tick`` is called from the event loop about once a second; it may raise ``SystemExit`` to stop, or
        call ``request_stop()`` for a graceful stop. ``balance``: this process's row in the table the processes of
        ``serve --workers`` share, to spread connections over them."""
        self.graceful_seconds = graceful_seconds
        self.balance = balance
        self.stop_requested = False
        self.draining_since: float | None = None
        self._tick = tick
        ensure_open_files(settings.gateway_http_max_connections + threads + SPARE_FILES)
        if sockets is None:
            sockets = [bind(settings.gateway_host, settings.gateway_port)]
        self.sockets = list(sockets)
        self.adj = Adjustments(**adjustments(settings, threads))
        self.map: dict[int, Any] = {}
        self.dispatcher = ThreadedTaskDispatcher()
        self.dispatcher.set_thread_count(threads)
        self.servers = [self._server(app, sock, settings) for sock in self.sockets]
        self.servers[0].tick = self._maintain
        if balance is not None:
            Woken(balance.wake_fd, map=self.map)

    def _server(self, app: Any, sock: socket.socket, settings: GatewaySettings) -> DeadlineServer:
        sock.setblocking(False)
        server = DeadlineServer(app, self.map, _sock=sock, dispatcher=self.dispatcher, adj=self.adj,
                                bind_socket=False, sockinfo=(sock.family, sock.type, sock.proto, sock.getsockname()))
        server.request_timeout = settings.gateway_http_request_timeout
        server.late_response = late_response(settings.gateway_http_request_timeout)
        return server

    @property
    def port(self) -> int:
        return int(self.sockets[0].getsockname()[1])

    def run(self) -> None:
        """Serve until ``close()`` from another thread, or a signal handler raises SystemExit here."""
        try:
            while self.map:  # wasyncore.loop's, with a timeout chosen at each turn
                poll2(self._balanced(), self.map)
        except (SystemExit, KeyboardInterrupt):
            pass
        finally:
            self.close()

    def _balanced(self) -> float:
        """Decide whether this process takes the next connection (``http.balance``); the event loop's timeout."""
        if self.balance is None:
            return self.adj.asyncore_loop_timeout
        accepting = self.servers[0].accepting and not self.servers[0].in_connection_overflow
        leaving = accepting and not self.balance.may_accept(sum(len(s.active_channels) for s in self.servers))
        if not accepting:
            self.balance.write(math.inf)  # stopping or full: the others are not to wait for this process
        for server in self.servers:
            server.leave_to_others = leaving
        return min(HEARTBEAT_SECONDS, self.adj.asyncore_loop_timeout)

    def request_stop(self) -> None:
        """Stop gracefully (from a signal handler or another thread): the event loop, within about a second,
        stops taking connections, lets the requests under way finish (``graceful_seconds`` at most), then ends
        ``run()``."""
        self.stop_requested = True

    def _maintain(self) -> None:
        if self._tick is not None:
            self._tick()
        if not self.stop_requested:
            return
        if self.draining_since is None:
            self.draining_since = time.monotonic()
            left = self.stop_accepting()
            print(f"mail-gateway: process {os.getpid()} stopping, {left} connection(s) to finish", file=sys.stderr,
                  flush=True)
        if not self.busy() or time.monotonic() - self.draining_since > self.graceful_seconds:
            raise SystemExit(0)  # out of the event loop; run() closes everything

    def stop_accepting(self) -> int:
        """The first step of a graceful stop: take no new connections, close those waiting idle between two
        requests, and answer the requests under way with ``Connection: close``. Returns how many connections
        are left to finish."""
        for server in self.servers:
            server.accepting = False
            server.draining = True
        for channel in list(self.map.values()):
            if isinstance(channel, HTTPChannel) and not self._channel_busy(channel):
                channel.close()
        return sum(isinstance(channel, HTTPChannel) for channel in self.map.values())

    @staticmethod
    def _channel_busy(channel: Any) -> bool:
        return bool(getattr(channel, "requests", None) or getattr(channel, "total_outbufs_len", 0)
                    or getattr(channel, "request", None) is not None)

    def busy(self) -> bool:
        """Some connection has a request arriving, running or its answer still to send."""
        return any(self._channel_busy(channel) for channel in list(self.map.values()))

    def close(self) -> None:
        self.dispatcher.shutdown()
        for server in self.servers:
            server.close()
        for channel in list(self.map.values()):
            channel.close()
