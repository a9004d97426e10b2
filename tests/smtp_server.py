"""A real aiosmtpd server on a free loopback port, with small handlers that record or inject faults."""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller

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

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
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
    released: threading.Event = field(default_factory=threading.Event)

    async def _stall(self) -> None:
        while not self.released.is_set():
            await asyncio.sleep(0.05)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.stall_at == "RCPT":
            await self._stall()
        reply = self.rcpt_replies.get(address, self.default_rcpt_reply)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.stall_at == "DATA":
            await self._stall()
        if self.data_reply:
            return self.data_reply
        await super().handle_DATA(server, session, envelope)
        if self.disconnect_after_data:
            server.transport.close()
            return "421 closing"  # never reaches the closed connection
        return "250 2.0.0 OK queued"


class SmtpServer:
    """A started aiosmtpd ``Controller``; ``stop()`` releases any stalled handler first."""

    def __init__(self, handler: Any, **smtp_kwargs: Any) -> None:
        self.handler = handler
        self.port = free_port()
        self.controller = Controller(handler, hostname=HOST, port=self.port, **smtp_kwargs)
        self.controller.start()

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def settings(self, **overrides: Any) -> dict[str, Any]:
        # Retries wait milliseconds, not the production half-second, so fault tests stay fast.
        return {"mail_backend": "smtp", "mail_server": HOST, "mail_port": self.port, "mail_retry_backoff": 0.001,
                **overrides}

    def stop(self) -> None:
        released = getattr(self.handler, "released", None)
        if released is not None:
            released.set()
        self.controller.stop()
