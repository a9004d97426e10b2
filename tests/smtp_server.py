"""A real aiosmtpd server on a free loopback port, with small handlers that record or inject faults."""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

HOST = "127.0.0.1"


def free_port() -> int:
    # aiosmtpd's Controller(port=0) fails its own start-up self-check, so ask the OS for a port first.
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: Any


@dataclass
class RecordingHandler:
    """Accepts everything and records what arrived, with the connection it came on."""

    messages: list[Received] = field(default_factory=list)
    connections: int = 0
    quits: int = 0  # QUIT commands received: how a client closes politely
    client_certificates: list[dict | None] = field(default_factory=list)
    live: list[Any] = field(default_factory=list)  # the aiosmtpd protocol object of each connection seen
    pipelining: bool = False  # advertise RFC 2920 PIPELINING (aiosmtpd reads commands in order either way)
    buffered_at_mail: list[int] = field(default_factory=list)  # bytes already waiting when MAIL is handled

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        if server not in self.live:
            self.connections += 1
            self.live.append(server)
        return responses

    async def handle_QUIT(self, server, session, envelope):
        self.quits += 1
        return "221 Bye"

    async def handle_DATA(self, server, session, envelope):
        ssl_object = server.transport.get_extra_info("ssl_object")
        self.client_certificates.append(ssl_object.getpeercert() if ssl_object is not None else None)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, session.peer))
        return "250 2.0.0 OK queued"


@dataclass
class FaultHandler(RecordingHandler):
    """Answers chosen replies: ``mail_reply`` at MAIL, ``rcpt_replies`` per address at RCPT,
    ``data_reply`` after the message data; ``disconnect_after_data`` drops the connection instead of
    answering the final dot; ``stall_at`` ("RCPT" or "DATA") never answers until the test ends."""

    mail_reply: str | None = None
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    default_rcpt_reply: str | None = None
    data_reply: str | None = None
    disconnect_after_data: bool = False
    stall_at: str | None = None
    disconnect_at_rcpt: bool = False
    hang_up_on_reuse: bool = False  # close, without a reply, a connection's second MAIL (an idle drop race)
    released: threading.Event = field(default_factory=threading.Event)
    faults_left: int | None = None  # answer the fault only this many times, then behave
    data_commands: int = 0

    def _fault_due(self) -> bool:
        if self.faults_left is None:
            return True
        if self.faults_left <= 0:
            return False
        self.faults_left -= 1
        return True

    async def _stall(self) -> None:
        while not self.released.is_set():
            await asyncio.sleep(0.05)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.buffered_at_mail.append(len(server._reader._buffer))  # pipelined RCPT/DATA arrive with MAIL
        session.mails = getattr(session, "mails", 0) + 1
        if self.hang_up_on_reuse and session.mails > 1 and self._fault_due():
            server.transport.close()
            return "421 closing"  # never reaches the closed connection
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.stall_at == "RCPT":
            await self._stall()
        if self.disconnect_at_rcpt and self._fault_due():
            server.transport.close()
            return "421 closing"  # never reaches the closed connection
        reply = self.rcpt_replies.get(address, self.default_rcpt_reply)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.data_commands += 1
        if self.stall_at == "DATA":
            await self._stall()
        if self.data_reply and self._fault_due():
            return self.data_reply
        await super().handle_DATA(server, session, envelope)
        if self.disconnect_after_data:
            server.transport.close()
            return "421 closing"  # never reaches the closed connection
        return "250 2.0.0 OK queued"


class RefusingSMTP(SMTP):
    """Greets every connection with ``421`` and hangs up, as a server shedding load does."""

    async def _handle_client(self) -> None:
        # aiosmtpd has no hook before its 220 greeting, so the greeting coroutine itself is replaced.
        await self.push("421 4.3.2 Service not available, closing transmission channel")
        self.transport.close()


class _Controller(Controller):
    def __init__(self, handler: Any, smtp_class: type[SMTP], **kwargs: Any) -> None:
        self.smtp_class = smtp_class
        super().__init__(handler, **kwargs)

    def factory(self) -> SMTP:
        return self.smtp_class(self.handler, **self.SMTP_kwargs)


class SmtpServer:
    """A started aiosmtpd ``Controller``; ``stop()`` releases any stalled handler first."""

    def __init__(self, handler: Any, smtp_class: type[SMTP] = SMTP, **smtp_kwargs: Any) -> None:
        self.handler = handler
        self.port = free_port()
        self.controller = _Controller(handler, smtp_class, hostname=HOST, port=self.port, **smtp_kwargs)
        self.controller.start()

    def drop_connections(self) -> None:
        """Close every client connection from the server's side, as a server does to idle clients."""
        done = threading.Event()

        def close_all() -> None:
            for protocol in self.handler.live:
                if protocol.transport is not None:
                    protocol.transport.close()
            # close() shuts the socket in a later callback; signal only after that has run.
            loop.call_soon(loop.call_soon, done.set)

        loop = self.controller.loop
        self.controller.loop.call_soon_threadsafe(close_all)
        assert done.wait(5), "the server did not close its connections"

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """Direct delivery to this server. Retries wait milliseconds, not the production half-second, so fault
        tests stay fast."""
        return self.queued_settings(mail_retry_backoff=0.001, **overrides)

    def queued_settings(self, **overrides: Any) -> dict[str, Any]:
        """Delivery to this server without MAIL_RETRY_*: queued delivery refuses them (the queue retries)."""
        return {"mail_backend": "smtp", "mail_server": HOST, "mail_port": self.port, **overrides}

    def stop(self) -> None:
        released = getattr(self.handler, "released", None)
        if released is not None:
            released.set()
        self.controller.stop()
