"""One request of the link check, its timeout a deadline for the whole exchange and its name looked up on the
bounded lookups (``lookup``): each read of its socket (http and https) waits only for what is left of its time,
and at most ``MAX_BYTES`` of a body is read. Redirects are answers here (``links`` follows and lists them), and no
proxy from the environment is used.
"""

from __future__ import annotations

import functools
import http.client
import math
import socket
import ssl
import time
import urllib.error
import urllib.request
from typing import Any

from mail_gateway.outbox.checks.lookup import NameLookups

MAX_BYTES = 64 * 1024
USER_AGENT = "mail-gateway-link-check"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect comes back as its response (an HTTPError with its Location), so each hop is listed and bounded.
    # Declined before urllib reads the Location, which raises for a malformed one ("http://[oops/").
    def http_error_302(self, *args: Any, **kwargs: Any) -> None:
        return None

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


class _Deadline:
    """A socket each read of which waits only for the time left before its deadline: a socket's timeout bounds
    each read alone, so a server sending a byte at a time would hold the check for as long as it liked."""

    deadline = math.inf

    def recv_into(self, *args: Any, **kwargs: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        self.settimeout(left)  # type: ignore[attr-defined]
        return super().recv_into(*args, **kwargs)  # type: ignore[misc, no-any-return]


class _Socket(_Deadline, socket.socket):
    pass


class _TLSSocket(_Deadline, ssl.SSLSocket):
    pass


_TLS = ssl.create_default_context()
_TLS.sslsocket_class = _TLSSocket
_TLS.set_alpn_protocols(["http/1.1"])


class _Looked:
    """A connection whose timeout is a deadline for the whole exchange, its name looked up on ``lookups``."""

    timeout: float
    deadline = math.inf

    def __init__(self, *args: Any, lookups: NameLookups, internal: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # http.client's own connect opens its socket with this: here, by the deadline, with the lookup on lookups,
        # to public addresses only unless internal ones are allowed.
        self._create_connection = lambda address, *_: lookups.connect(address, self.deadline, internal=internal)

    def connect(self) -> None:
        self.deadline = time.monotonic() + self.timeout
        super().connect()  # type: ignore[misc]


class _Connection(_Looked, http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        plain = self.sock
        self.sock = _Socket(plain.family, plain.type, plain.proto, fileno=plain.detach())
        self.sock.settimeout(self.timeout)
        self.sock.deadline = self.deadline


class _TLSConnection(_Looked, http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()  # wrapped by _TLS, so its socket is a _TLSSocket; the handshake is bounded by its deadline
        self.sock.deadline = self.deadline


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, lookups: NameLookups, internal: bool) -> None:
        super().__init__()
        self.connection = functools.partial(_Connection, lookups=lookups, internal=internal)

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self.connection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, lookups: NameLookups, internal: bool) -> None:
        super().__init__(context=_TLS)
        self.connection = functools.partial(_TLSConnection, lookups=lookups, internal=internal)

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self.connection, req, context=_TLS)


def opener(lookups: NameLookups, *, internal: bool) -> urllib.request.OpenerDirector:
    """What fetches the links of one check, looking their names up on ``lookups``, connecting to public
    addresses only unless ``internal`` (``addresses``)."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects(),
                                       _HTTPHandler(lookups, internal), _HTTPSHandler(lookups, internal))


def get(fetcher: urllib.request.OpenerDirector, url: str, timeout: float, deadline: float) -> tuple[int, str | None]:
    """One request through ``fetcher`` (an ``opener``): its status and, for a redirect, where to."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
    try:
        response = fetcher.open(request, timeout=timeout)
    except urllib.error.HTTPError as answer:  # 3xx without following, 4xx and 5xx: an answer all the same
        with answer:
            return answer.code, answer.headers.get("Location")
    with response:
        left = MAX_BYTES
        try:
            while left > 0 and time.monotonic() < deadline:
                chunk = response.read1(min(left, 16384))
                if not chunk:
                    break
                left -= len(chunk)
        except TimeoutError:
            pass  # the status came; a body that is slow to drain does not change it
        return response.status, None
