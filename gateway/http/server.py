"""The production HTTP server: waitress, tuned so that hostile or merely idle clients cannot starve the API.

Why waitress (the figures are in the README and ``benchmarks/RESULTS.md``): it reads every request, headers
and body, on its event loop before a worker thread sees it, so slow or idle clients cost a file descriptor
each and never a thread. Left at its defaults it stops accepting after 100 connections and keeps an idle one
for 120 s, so ``HttpService`` sets the connection limit (``GATEWAY_HTTP_MAX_CONNECTIONS``), the idle
keep-alive time (``GATEWAY_HTTP_IDLE_TIMEOUT``) and ``poll()`` instead of ``select()``, and adds what waitress
lacks: a deadline for a whole request to arrive (``GATEWAY_HTTP_REQUEST_TIMEOUT``, answered 408), and the
server's own refusals (body too large, bad request line, header too long) as problem+json.

``HttpService`` serves sockets bound beforehand, so a prefork master (``serve --workers``) can bind once and
hand the same listening sockets to every worker process, each running one ``HttpService``.
"""

from __future__ import annotations

import json
import resource
import socket
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher
from waitress.utilities import RequestEntityTooLarge

from mail_gateway.errors import ConfigurationError
from mail_gateway.http.limits import too_large
from mail_gateway.http.problems import PROBLEM_JSON, Problem

if TYPE_CHECKING:
    from mail_gateway.settings import GatewaySettings

MAX_HEADER_BYTES = 64 * 1024
# Descriptors beside the HTTP connections: the listening socket, SMTP pool connections, ingress sessions, logs.
SPARE_FILES = 256
BACKLOG = 2048


def problem_bytes(problem: Problem, reason: str) -> tuple[str, list[tuple[str, str]], bytes]:
    body = json.dumps(problem.body()).encode("utf-8")
    return f"{problem.status} {reason}", [("Content-Type", PROBLEM_JSON), *problem.headers.items()], body


class ProblemErrorTask(ErrorTask):
    """waitress's own refusals (413, 431, 400, 501) as problem+json, like every other refusal of the API."""

    def execute(self) -> None:
        error = self.request.error
        if isinstance(error, RequestEntityTooLarge):
            problem = too_large(self.channel.adj.max_request_body_size)
        else:
            problem = Problem(error.code, error.reason, f"{error.reason}: {error.body}.")
        self.status, headers, body = problem_bytes(problem, error.reason)
        self.response_headers.extend(headers)
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


def _late_response(timeout: float) -> bytes:
    problem = Problem(408, "Request timeout", f"The request's headers and body did not arrive within {timeout:g}s "
                      "(GATEWAY_HTTP_REQUEST_TIMEOUT); send the whole request at once.", "request-timeout")
    status, headers, body = problem_bytes(problem, "Request Timeout")
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers),
             f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class DeadlineChannel(HTTPChannel):
    """A connection that remembers when the request it is receiving began, for the server's deadline."""

    error_task_class = ProblemErrorTask
    request_started: float | None = None

    def received(self, data: bytes) -> bool:
        before = self.request
        result = super().received(data)
        if self.request is None:
            self.request_started = None
        elif self.request is not before:
            self.request_started = time.time()
        return result

    def refuse_late_request(self, response: bytes) -> None:
        """Answer 408 and close: called from the event loop when the request missed its deadline."""
        self.request = self.request_started = None
        self.write_soon(response)
        self.close_when_flushed = True


class DeadlineServer(TcpWSGIServer):
    channel_class = DeadlineChannel
    request_timeout = 60.0
    late_response = b""
    tick: Any = None  # called from the event loop at each maintenance (a prefork worker's heartbeat)

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # closes connections idle longer than channel_timeout
        if self.tick is not None:
            self.tick()
        cutoff = now - self.request_timeout
        for channel in list(self.active_channels.values()):
            started = getattr(channel, "request_started", None)
            if (started is not None and started < cutoff and channel.request is not None and not channel.requests
                    and not channel.will_close and not channel.close_when_flushed):
                channel.refuse_late_request(self.late_response)


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
                 sockets: Sequence[socket.socket] | None = None, tick: Callable[[], None] | None = None) -> None:
        """``tick`` is called from the event loop about once a second; it may raise ``SystemExit`` to stop."""
        ensure_open_files(settings.gateway_http_max_connections + threads + SPARE_FILES)
        if sockets is None:
            sockets = [bind(settings.gateway_host, settings.gateway_port)]
        self.sockets = list(sockets)
        self.adj = Adjustments(**adjustments(settings, threads))
        self.map: dict[int, Any] = {}
        self.dispatcher = ThreadedTaskDispatcher()
        self.dispatcher.set_thread_count(threads)
        self.servers = [self._server(app, sock, settings) for sock in self.sockets]
        self.servers[0].tick = tick

    def _server(self, app: Any, sock: socket.socket, settings: GatewaySettings) -> DeadlineServer:
        sock.setblocking(False)
        server = DeadlineServer(app, self.map, _sock=sock, dispatcher=self.dispatcher, adj=self.adj,
                                bind_socket=False, sockinfo=(sock.family, sock.type, sock.proto, sock.getsockname()))
        server.request_timeout = settings.gateway_http_request_timeout
        server.late_response = _late_response(settings.gateway_http_request_timeout)
        return server

    @property
    def port(self) -> int:
        return int(self.sockets[0].getsockname()[1])

    def run(self) -> None:
        """Serve until ``close()`` from another thread, or a signal handler raises SystemExit here."""
        try:
            self.servers[0].asyncore.loop(timeout=self.adj.asyncore_loop_timeout, map=self.map,
                                          use_poll=True)
        except (SystemExit, KeyboardInterrupt):
            pass
        finally:
            self.close()

    def stop_accepting(self) -> None:
        """Take no new connections (the first step of a graceful stop); those open are still served."""
        for server in self.servers:
            server.accepting = False

    def busy(self) -> bool:
        """Some connection has a request arriving, running or its answer still to send."""
        return any(getattr(channel, "requests", None) or getattr(channel, "total_outbufs_len", 0)
                   or getattr(channel, "request", None) is not None for channel in list(self.map.values()))

    def close(self) -> None:
        self.dispatcher.shutdown()
        for server in self.servers:
            server.close()
        for channel in list(self.map.values()):
            channel.close()
