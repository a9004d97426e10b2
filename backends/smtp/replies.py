"""How the backend's connections read the server's replies: each step within the timeout, and never out of step.

smtplib bounds each socket read by the timeout, not a reply: a server dripping one byte just inside it holds a
send for as long as it likes. And for a reply line it cannot parse it returns code -1 and leaves the lines after
it unread, so the next command would take them for its own replies. ``ReplyReading`` mends both where smtplib
reads every reply (``getreply``): the greeting, EHLO, STARTTLS, login and each command of a transaction alike.
"""

from __future__ import annotations

import io
import smtplib
import socket
import time
from collections.abc import Iterable


class UnreadableReplyError(smtplib.SMTPServerDisconnected):
    """The server answered something that is not an SMTP reply. What else it sent, and so which command the next
    reply answers, is unknown: the connection was closed, and the failure means what a lost connection would."""


def _timeout(conn: smtplib.SMTP) -> float | None:
    # smtplib's default is socket._GLOBAL_DEFAULT_TIMEOUT, an object rather than a number: no deadline then.
    return conn.timeout if isinstance(conn.timeout, (int, float)) else None


class _DeadlineReader(io.RawIOBase):
    """The socket's bytes for smtplib's reply reader (under an ``io.BufferedReader``, as ``makefile`` would give),
    each read allowed only what is left of the step's time.

    Hand-written because smtplib has no per-reply deadline and a socket's timeout starts again with every recv. The
    cost is one ``settimeout`` per recv, and a reply usually arrives in one recv.
    """

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                # A TimeoutError, as the socket raises for a silent server: smtplib closes the connection, and
                # callers tell a timeout from a hang-up by it.
                raise TimeoutError("timed out: the server's reply did not arrive whole in time")
            self.sock.settimeout(remaining)
        return self.sock.recv_into(buffer)


class ReplyReading(smtplib.SMTP):
    """An ``smtplib.SMTP`` whose every reply arrives whole within ``timeout`` seconds, and whose connection is closed
    (``UnreadableReplyError``) on a reply it cannot read, rather than left to answer the next command with stale
    lines."""

    _reader: _DeadlineReader | None = None

    def getreply(self) -> tuple[int, bytes]:
        timeout = _timeout(self)
        if self.file is None and self.sock is not None:  # a new socket (connect, STARTTLS): read it through ours
            self._reader = _DeadlineReader(self.sock)
            self.file = io.BufferedReader(self._reader)
        if self._reader is not None and getattr(self.file, "raw", None) is self._reader:
            self._reader.deadline = None if timeout is None else time.monotonic() + timeout
        try:
            code, text = super().getreply()
        finally:
            if self.sock is not None and timeout is not None:
                self.sock.settimeout(timeout)  # the next command is sent with the whole timeout again
        if code == -1:
            self.close()
            raise UnreadableReplyError("unreadable reply (not an SMTP reply line); connection closed")
        return code, text


def send_all(conn: smtplib.SMTP, chunks: Iterable[bytes]) -> None:
    """Send the message's chunks as one step, all of them within the timeout (``sendall`` bounds each call)."""
    timeout = _timeout(conn)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        for chunk in chunks:
            if deadline is not None and conn.sock is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("timed out: the message was not sent whole in time")
                conn.sock.settimeout(remaining)
            conn.send(chunk)
    finally:
        if conn.sock is not None and timeout is not None:
            conn.sock.settimeout(timeout)
