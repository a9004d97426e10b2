"""Helpers for the SMTP ingress tests: start the ingress on a free loopback port, wait on conditions."""

from __future__ import annotations

import smtplib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from smtp_server import HOST, RecordingHandler

from mail_gateway.assembly import build_sender
from mail_gateway.backends.base import EmailBackend
from mail_gateway.backends.registry import create_backend
from mail_gateway.ingress.server import IngressServer
from mail_gateway.settings import GatewaySettings

DEADLINE_SECONDS = 15


def smtp_ready(port: int, process: subprocess.Popen) -> bool:
    """Whether the SMTP server ``process`` started answers on ``port`` yet (failing if it exited instead)."""
    assert process.poll() is None, "the server exited"
    try:
        with smtplib.SMTP(HOST, port, timeout=2) as client:
            return client.noop()[0] == 250
    except OSError:
        return False


def wait_until(condition: Callable[[], bool], what: str, timeout: float = DEADLINE_SECONDS) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds (a bound, not an expectation)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


@dataclass
class Ingress:
    server: IngressServer
    backend: EmailBackend

    @property
    def port(self) -> int:
        return self.server.port

    def client(self, **kwargs: Any) -> smtplib.SMTP:
        return smtplib.SMTP(HOST, self.port, timeout=DEADLINE_SECONDS, **kwargs)


@dataclass
class IngressFactory:
    make_settings: Callable[..., GatewaySettings]
    started: list[IngressServer] = field(default_factory=list)

    def __call__(self, backend: EmailBackend | None = None, **values: Any) -> Ingress:
        settings = self.make_settings(**values)
        backend = backend or create_backend(settings)
        server = IngressServer(settings, build_sender(settings, backend, direct=True)[0], port=0).start()
        self.started.append(server)
        # aiosmtpd opens one connection itself to check that it serves; sessions counted from zero start here.
        wait_until(lambda: server.active_sessions == 0, "the start-up check's session has ended")
        return Ingress(server, backend)

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


class Upstream:
    """A recording aiosmtpd server on a given port, so a test can bring "the upstream" up after a failure."""

    def __init__(self, port: int, handler: Any = None) -> None:
        self.handler = handler if handler is not None else RecordingHandler()
        self.controller = Controller(self.handler, hostname=HOST, port=port)
        self.controller.start()

    @property
    def messages(self) -> list[Any]:
        return self.handler.messages

    def stop(self) -> None:
        self.controller.stop()


def message_bytes(subject: str = "Hello", message_id: str = "<ingress-test@example.com>", body: bytes = b"") -> bytes:
    """A message as its sender built it, CRLF line endings, with lines that need SMTP dot-stuffing."""
    body = body or ("Line one\r\n.a line starting with a dot\r\n..two dots\r\nnon-ASCII: caf\u00e9 \u2713\r\n"
                    "last line\r\n").encode("utf-8")
    headers = (f"From: App <app@example.com>\r\nTo: friend@example.com\r\nSubject: {subject}\r\n"
               f"Message-ID: {message_id}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Transfer-Encoding: 8bit\r\n\r\n").encode("ascii")
    return headers + body
