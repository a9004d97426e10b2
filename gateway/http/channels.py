"""The connection and server classes of waitress that the gateway extends: the server's own refusals (body too
large, header too long, a request that is not valid HTTP, an unsupported Transfer-Encoding) as problem+json naming
the gateway's limit and the fix, a deadline for a whole request to arrive (answered 408), and a graceful stop that
closes keep-alive connections instead of serving them on."""

from __future__ import annotations

import json
import time
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, WSGITask
from waitress.utilities import (
    BadRequest,
    Error,
    RequestEntityTooLarge,
    RequestHeaderFieldsTooLarge,
    ServerNotImplemented,
)

from mail_gateway.errors import GatewayError
from mail_gateway.http.limits import too_large
from mail_gateway.http.nosniff import with_nosniff
from mail_gateway.http.problems import PROBLEM_JSON, Problem, problem_for

# The reason a request is malformed can quote a whole header line of the client's: this much of it is enough.
REASON_CHARACTERS = 200


def problem_bytes(problem: Problem, reason: str) -> tuple[str, list[tuple[str, str]], bytes]:
    body = json.dumps(problem.body()).encode("utf-8")
    return f"{problem.status} {reason}", with_nosniff([("Content-Type", PROBLEM_JSON), *problem.headers.items()]), body


def header_too_large(limit: int) -> Problem:
    return Problem(431, "Request header too large",
                   f"The request line and header fields are larger than {limit} bytes together; send shorter header "
                   "fields, fewer of them, or a shorter URL.", "header-too-large", extra={"max_bytes": limit})


def malformed_request(reason: str) -> Problem:
    """``reason`` is the parser's word on what was wrong (``Content-Length is invalid``, ``Malformed HTTP method
    "G@T"``): kept, since it says which part of the request to fix."""
    reason = reason.rstrip(". ")
    if len(reason) > REASON_CHARACTERS:
        reason = reason[:REASON_CHARACTERS] + "..."
    return Problem(400, "Malformed request",
                   f"The request is not valid HTTP/1.1: {reason}. Send a request line of METHOD /path HTTP/1.1, each "
                   "header field as a Name: value line, at most one Content-Length (digits only), and a chunked body "
                   "in well-formed chunks.", "malformed-request")


def unsupported_transfer_encoding() -> Problem:
    return Problem(501, "Transfer-Encoding not supported",
                   "The request's Transfer-Encoding is not supported: send the body with a Content-Length, or with "
                   "Transfer-Encoding: chunked alone (no gzip, deflate or compress coding).",
                   "unsupported-transfer-encoding")


def server_problem(error: Error, adj: Adjustments) -> Problem:
    """The problem for a request the server refuses before the app runs, naming the gateway's limits and the fix
    rather than the server's internal names for them."""
    if isinstance(error, RequestEntityTooLarge):
        return too_large(adj.max_request_body_size)
    if isinstance(error, RequestHeaderFieldsTooLarge):
        return header_too_large(adj.max_request_header_size)
    if isinstance(error, BadRequest):
        return malformed_request(str(error.body))
    if isinstance(error, ServerNotImplemented):  # only ever raised for a Transfer-Encoding other than chunked
        return unsupported_transfer_encoding()
    # An exception that escaped the app: logged by the server; its text (a traceback, maybe) is never sent.
    return problem_for(GatewayError())


class ProblemErrorTask(ErrorTask):
    """The server's own refusals (413, 431, 400, 501, 500) as problem+json, like every other refusal of the API."""

    def execute(self) -> None:
        error = self.request.error
        problem = server_problem(error, self.channel.adj)
        self.status, headers, body = problem_bytes(problem, error.reason)
        self.response_headers.extend(headers)
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


def late_response(timeout: float) -> bytes:
    problem = Problem(408, "Request timeout", f"The request's headers and body did not arrive within {timeout:g}s "
                      "(GATEWAY_HTTP_REQUEST_TIMEOUT); send the whole request at once.", "request-timeout")
    status, headers, body = problem_bytes(problem, "Request Timeout")
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers),
             f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class DrainingTask(WSGITask):
    """A request answered while the server stops: its answer says ``Connection: close`` and the connection
    closes after it, so a keep-alive client takes its next request elsewhere instead of being served on and
    on, or cut off between two requests when the process ends. (Each request's task: it also gives the app the
    host an absolute-form target names, which waitress leaves out.)"""

    def get_environment(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environment()
        if self.request.proxy_netloc:  # RFC 9112 3.2.2: an absolute-form target's host is the one asked for, not Host
            environ["HTTP_HOST"] = self.request.proxy_netloc
        return environ

    def build_response_header(self) -> bytes:
        if self.channel.server.draining:
            self.set_close_on_finish()
        return super().build_response_header()


class DeadlineChannel(HTTPChannel):
    """A connection that remembers when the request it is receiving began, for the server's deadline."""

    error_task_class = ProblemErrorTask
    task_class = DrainingTask
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
    draining = False  # stopping: no new connections, and every answer closes its connection
    leave_to_others = False  # another process of ``serve --workers`` takes the next connection (http.balance)

    def readable(self) -> bool:
        return super().readable() and not self.leave_to_others

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
