"""One webhook ``POST`` over HTTP/1.1, bounded as a whole: connect, TLS, send and the reply share one deadline.

A receiver decides how long a request lasts only up to that deadline (a reply dripped a byte at a time ends
there, failed). The reply is read whole and strictly (a status line, at most ``MAX_HEADER_LINES`` header lines
ending in a blank line, then its body by length, by chunks, or up to the close): anything else, a reply cut off
included, is a failure. Redirects are never followed: the signed headers and the event stay with the configured
URL, and a 3xx is a failure naming its ``Location``. Every error of the exchange is its failure, never raised.

Written by hand because the standard clients cannot be held to this: ``http.client`` (and urllib on top of it)
bounds each read, not the request, and takes a reply whose connection ends inside its headers as complete (a
cut-off "200" was recorded as delivered); urllib follows redirects with the signed headers. The wider clients
(requests, urllib3, httpx) share the per-read timeout and are not dependencies of the gateway.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

MAX_HEADER_LINES = 100
MAX_LINE = 8192
URL_SAFE = "!#$%&'()*+,/:;=?@[]~"  # what a request target keeps as it is; the rest is percent-encoded
STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-9][0-9]{2})(?: [^\r\n]*)?")


@dataclass(frozen=True)
class Reply:
    """The endpoint's status code, or None when no complete reply came; why it is a failure, if it is one."""

    code: int | None
    error: str | None = None


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds, self.end = seconds, time.monotonic() + seconds

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no complete reply within {self.seconds:g} s")
        return left


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Reply:
    """POST ``body`` to ``url``; the whole exchange ends within ``timeout`` seconds."""
    deadline = _Deadline(timeout)
    try:
        with _connect(url, deadline) as sock:
            sock.settimeout(deadline.left())
            sock.sendall(_request(url, body, headers))
            return _judge(*_Reader(sock, deadline).reply())
    except TimeoutError:
        return Reply(None, f"no complete reply within {timeout:g} s")
    except (OSError, ValueError, ssl.SSLError) as exc:  # ConnectionError, refused, TLS, a reply not HTTP...
        return Reply(None, " ".join(str(exc).split()) or type(exc).__name__)


def _connect(url: str, deadline: _Deadline) -> socket.socket:
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname
    if not host:
        raise ValueError("the webhook URL names no host")
    sock = socket.create_connection((host, parts.port or (443 if secure else 80)), timeout=deadline.left())
    if not secure:
        return sock
    try:
        tls = ssl.create_default_context().wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
    except BaseException:
        sock.close()
        raise
    try:
        _handshake(tls, deadline)
    except BaseException:
        tls.close()
        raise
    return tls


def _handshake(tls: ssl.SSLSocket, deadline: _Deadline) -> None:
    """Non-blocking, so that a handshake dripped a byte at a time ends at the deadline too."""
    tls.setblocking(False)
    while True:
        try:
            tls.do_handshake()
            return
        except ssl.SSLWantReadError:
            select.select([tls], [], [], deadline.left())
        except ssl.SSLWantWriteError:
            select.select([], [tls], [], deadline.left())


def _request(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    parts = urlsplit(url)
    target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=URL_SAFE)
    name = parts.hostname or ""
    host = f"[{name}]" if ":" in name else name.encode("idna").decode("ascii")
    host += f":{parts.port}" if parts.port else ""
    lines = [f"POST {target} HTTP/1.1", f"Host: {host}", "Content-Type: application/json", "User-Agent: mail-gateway",
             f"Content-Length: {len(body)}", "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _judge(code: int, location: str | None) -> Reply:
    if 200 <= code < 300:
        return Reply(code)
    if 300 <= code < 400:
        return Reply(code, f"HTTP {code} to {location or '(no Location)'}: redirects are not followed")
    return Reply(code, f"HTTP {code}")


def _printable(raw: bytes) -> str:
    return "".join(c if c.isprintable() else "?" for c in raw.decode("latin-1"))[:300]


class _Reader:
    """The reply, read strictly from a socket within the deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self.sock, self.deadline, self.buffer = sock, deadline, b""

    def reply(self) -> tuple[int, str | None]:
        """The final status code and its Location, once the whole reply is read."""
        while True:
            status = self._line("the status line")
            matched = STATUS_LINE.fullmatch(status)
            if matched is None:
                raise ValueError(f"the reply is not HTTP: {_printable(status[:80])!r}")
            code, fields = int(matched.group(1)), self._headers()
            if code >= 200 or code == 101:  # 1xx are interim; a 101 would switch protocols, refused below
                break
        if code == 101:
            raise ValueError("the reply switches protocols")
        if code not in (204, 304):
            self._body(fields)
        return code, _printable(fields["location"][-1]) if "location" in fields else None

    def _headers(self) -> dict[str, list[bytes]]:
        fields: dict[str, list[bytes]] = {}
        for _ in range(MAX_HEADER_LINES + 1):
            line = self._line("its headers")
            if not line:
                return fields
            name, colon, value = line.partition(b":")
            if not colon or not name.strip() or name != name.strip():
                raise ValueError(f"the reply has a malformed header line: {_printable(line[:80])!r}")
            fields.setdefault(name.decode("latin-1").lower(), []).append(value.strip())
        raise ValueError(f"the reply has more than {MAX_HEADER_LINES} header lines")

    def _body(self, fields: dict[str, list[bytes]]) -> None:
        if fields.get("transfer-encoding", [b""])[-1].lower().endswith(b"chunked"):
            while (size := self._chunk_size()) > 0:
                self._exactly(size + 2)
            while self._line("its trailer"):
                pass
        elif "transfer-encoding" not in fields and "content-length" in fields:
            lengths = set(fields["content-length"])
            if len(lengths) != 1 or not next(iter(lengths)).isdigit():
                raise ValueError("the reply has an invalid Content-Length")
            self._exactly(int(next(iter(lengths))))
        else:  # the body ends with the connection (asked for with Connection: close)
            while self._more():
                self.buffer = b""

    def _chunk_size(self) -> int:
        size = self._line("its body").partition(b";")[0].strip()
        try:
            return int(size, 16)
        except ValueError:
            raise ValueError("the reply has a malformed chunk") from None

    def _exactly(self, size: int) -> None:
        while len(self.buffer) < size:
            size -= len(self.buffer)
            self.buffer = b""
            if not self._more():
                raise ValueError("the connection closed before the end of the reply's body")
        self.buffer = self.buffer[size:]

    def _line(self, where: str) -> bytes:
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_LINE:
                raise ValueError(f"the reply has a line of more than {MAX_LINE} bytes in {where}")
            if not self._more():
                raise ValueError(f"the connection closed before the end of {where}")
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.removesuffix(b"\r")

    def _more(self) -> bool:
        """Read what comes within the time left; False at the end of the connection."""
        self.sock.settimeout(self.deadline.left())
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)
