"""Replies the SMTP backend cannot read (not an SMTP reply line) or that never arrive whole (dripped a byte at a time),
against a scripted server on a real loopback socket: aiosmtpd cannot answer malformed or dripped replies."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import pytest
from flask_mailman import EmailMultiAlternatives
from ingress_support import wait_until
from queue_support import MESSAGE, queued_app
from smtp_server import HOST

from mail_gateway import create_app
from mail_gateway.backends.registry import create_backend
from mail_gateway.errors import ConnectionSetupError, DeliveryOutcomeUnknownError, TransientDeliveryError

DESYNCED = b"250-ok\r\nbogus continuation\r\n250 ok\r\n"  # smtplib reads "bogus" as code -1 and stops there
GARBAGE = b"hello there\r\n"
DRIP_SECONDS = 0.4  # per byte: a 21-byte reply takes 8 s, far over the 1 s MAIL_TIMEOUT these tests set


@dataclass
class Drip:
    """A reply sent one byte at a time, each byte inside the socket timeout but the whole far beyond it."""

    reply: bytes


@dataclass
class Connection:
    number: int
    commands: list[str] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    closed_by_client: threading.Event = field(default_factory=threading.Event)


# The answer to a command ("MAIL FROM:<...>", "DATA", "." for the final dot) on a connection: bytes, a Drip, or
# None for the ordinary reply.
Script = Callable[[Connection, str], bytes | Drip | None]


class ScriptedServer:
    """A raw SMTP server on a free loopback port, answering each command as ``script`` says."""

    def __init__(self, script: Script, greeting: bytes | Drip = b"220 scripted ESMTP\r\n",
                 pipelining: bool = False) -> None:
        self.script, self.greeting, self.pipelining = script, greeting, pipelining
        self.connections: list[Connection] = []
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def settings(self, **overrides: object) -> dict[str, object]:
        return {"mail_backend": "smtp", "mail_server": HOST, "mail_port": self.port, "mail_timeout": 1, **overrides}

    @property
    def messages(self) -> list[tuple[int, bytes]]:
        return [(c.number, m) for c in self.connections for m in c.messages]

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            conn = Connection(len(self.connections) + 1)
            self.connections.append(conn)
            threading.Thread(target=self._serve, args=(sock, conn), daemon=True).start()

    def _serve(self, sock: socket.socket, conn: Connection) -> None:
        with sock, sock.makefile("rb") as lines:
            try:
                self._answer(sock, conn, self.greeting)
                while line := lines.readline():
                    command = line.decode("latin-1").strip()
                    conn.commands.append(command)
                    if not self._answer(sock, conn, self._reply(conn, command)):
                        return
                    if command.upper() == "DATA" and conn.commands[-1:] == [command]:
                        data = self._data(lines)
                        if data is None:
                            break
                        conn.messages.append(data)
                        conn.commands.append(".")
                        self._answer(sock, conn, self.script(conn, ".") or b"250 2.0.0 queued\r\n")
            except OSError:
                pass
            conn.closed_by_client.set()  # EOF (or a reset): the client hung up

    @staticmethod
    def _data(lines: BinaryIO) -> bytes | None:
        """The message up to the final dot; None when the client hung up before it."""
        data = b""
        while (line := lines.readline()) != b".\r\n":
            if not line:
                return None
            data += line
        return data

    def _reply(self, conn: Connection, command: str) -> bytes | Drip:
        verb = command.split(" ", 1)[0].split(":", 1)[0].upper()
        if verb == "EHLO":
            return b"250-scripted\r\n" + (b"250-PIPELINING\r\n" if self.pipelining else b"") + b"250 SIZE 100000\r\n"
        ordinary = {"DATA": b"354 go ahead\r\n", "QUIT": b"221 bye\r\n"}.get(verb, b"250 ok\r\n")
        return self.script(conn, command) or ordinary

    @staticmethod
    def _answer(sock: socket.socket, conn: Connection, reply: bytes | Drip) -> bool:
        """Send ``reply``; False when the client closed the connection while a Drip was under way."""
        if isinstance(reply, bytes):
            sock.sendall(reply)
            return True
        for byte in reply.reply:
            sock.sendall(bytes([byte]))
            # Wait between bytes, noticing when the client gives up (readable with nothing to read: EOF).
            if select.select([sock], [], [], DRIP_SECONDS)[0] and not sock.recv(1, socket.MSG_PEEK):
                conn.closed_by_client.set()
                return False
        return True


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Script = lambda conn, command: None, **kwargs: object) -> ScriptedServer:
        servers.append(ScriptedServer(script, **kwargs))  # type: ignore[arg-type]
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def message(subject: str = "Hi") -> EmailMultiAlternatives:
    return EmailMultiAlternatives(subject, "Body", "app@example.com", ["a@example.com"])


def first_connection_only(reply: bytes | Drip, verb: str) -> Script:
    def script(conn: Connection, command: str) -> bytes | Drip | None:
        return reply if conn.number == 1 and command.upper().startswith(verb) else None

    return script


# -- an unreadable reply before the final dot: a lost connection ---------------------------------------------

@pytest.mark.parametrize("pipelining", [False, True], ids=["one-by-one", "pipelined"])
def test_an_unreadable_rcpt_reply_closes_the_connection_and_is_transient(scripted, make_settings,
                                                                         pipelining) -> None:
    # Before: the first message was 'rejected' with code -1, and the next one on the same connection read the
    # stale "250 ok" as its reply to DATA (502 "refused DATA: 250 ok").
    server = scripted(first_connection_only(DESYNCED, "RCPT"), pipelining=pipelining)
    backend = create_backend(make_settings(**server.settings(mail_retry_attempts=1)))
    try:
        with pytest.raises(TransientDeliveryError) as caught:
            backend.send_messages([message("first")])
        assert caught.value.smtp_code is None and not caught.value.recipients
        assert "unreadable reply" in str(caught.value)
        wait_until(server.connections[0].closed_by_client.is_set, "the gateway closed the desynchronized connection")
        assert "." not in server.connections[0].commands
        [result] = backend.send_messages([message("second")])
        assert [r.status for r in result.recipients] == ["accepted"]
        assert [(number, b"Subject: second" in data) for number, data in server.messages] == [(2, True)]
    finally:
        backend.close()


def test_an_unreadable_rcpt_reply_is_retried_on_a_new_connection(scripted, make_settings) -> None:
    server = scripted(first_connection_only(DESYNCED, "RCPT"))
    backend = create_backend(make_settings(**server.settings(mail_retry_attempts=2, mail_retry_backoff=0.001)))
    try:
        [first, second] = backend.send_messages([message("first"), message("second")])
        assert first.attempts == 2 and second.attempts == 1
        assert [number for number, _ in server.messages] == [2, 2]
    finally:
        backend.close()


# -- an unreadable reply to the final dot: the outcome is unknown --------------------------------------------

def test_an_unreadable_reply_to_the_final_dot_is_unknown_and_never_resent(scripted, make_settings) -> None:
    # Before: 502 upstream-refused with smtp_code -1 and the garbage as its text.
    server = scripted(lambda conn, command: GARBAGE if command == "." else None)
    app = create_app(make_settings(**server.settings(mail_retry_attempts=3, mail_retry_backoff=0.001)))
    response = app.test_client().post("/v1/messages", json=MESSAGE)
    assert response.status_code == 503 and "Retry-After" not in response.headers
    assert response.get_json()["type"] == "urn:mail-gateway:problem:delivery-outcome-unknown"
    assert len(server.messages) == 1 and len(server.connections) == 1  # stored once, not sent again
    wait_until(server.connections[0].closed_by_client.is_set, "the gateway closed the connection")


def test_queued_an_unreadable_reply_to_the_final_dot_is_recorded_unknown_and_retried(scripted, make_settings,
                                                                                      tmp_path) -> None:
    # Before: the recipient was bounced with code -1 and never retried.
    server = scripted(first_connection_only(GARBAGE, "."))
    queued = queued_app(make_settings, gateway_store_url=f"sqlite:///{tmp_path}/store.sqlite3",
                        **server.settings(mail_timeout=2))
    try:
        found = queued.wait_status(queued.send()["id"], "delivered", "bounced")
        assert [e["type"] for e in found["events"]] == ["unknown", "delivered"]
        assert [number for number, _ in server.messages] == [1, 2]  # a duplicate rather than a loss
    finally:
        queued.stop()


# -- MAIL_TIMEOUT bounds each whole step, not each socket read ------------------------------------------------

@pytest.mark.parametrize(
    ("stage", "error", "detail"),
    [("greeting", ConnectionSetupError, "could not connect"),
     ("MAIL", TransientDeliveryError, "before the message was sent"),
     (".", DeliveryOutcomeUnknownError, "after the message was sent")],
    ids=["greeting", "mail", "final-dot"],
)
def test_a_dripped_reply_ends_the_step_at_mail_timeout(scripted, make_settings, stage, error, detail) -> None:
    # Before: each byte came inside the 1 s timeout, so the send waited out the whole 8 s drip and succeeded.
    drip = Drip(b"250 2.1.0 sender ok\r\n" if stage != "greeting" else b"220 slow scripted ESMTP\r\n")
    if stage == "greeting":
        server = scripted(greeting=drip)
    else:
        server = scripted(first_connection_only(drip, stage))
    backend = create_backend(make_settings(**server.settings(mail_retry_attempts=1)))
    try:  # the outcome says the step was cut: the whole drip, 8 s, would have been a success
        with pytest.raises(error, match=detail):
            backend.send_messages([message()])
    finally:
        backend.close()
    wait_until(server.connections[0].closed_by_client.is_set, "the gateway closed the connection")
    assert len(server.messages) == (1 if stage == "." else 0)
