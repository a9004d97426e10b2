"""A message's links (every ``href`` and ``src`` of its HTML, and the web addresses of its text) and, on request,
each http(s) one fetched with bounded time and size.

Each link gets ``PER_LINK_SECONDS`` and at most ``MAX_BYTES`` of its body read (the status is what matters, the
body is only drained), all of them together ``TOTAL_SECONDS``. Both are deadlines, not idle timeouts: each read
of a link's socket waits only for what is left of its time, so a server sending a byte at a time is cut off, and a
link still unfinished when the overall time is up (its name still resolving, say) is reported as timed out. Up to
``MAX_REDIRECTS`` redirects are followed and listed. Links are fetched a few at a time, directly (no proxy from the
environment), with urllib; other schemes (mailto:, cid:, data:) are never fetched.
"""

from __future__ import annotations

import http.client
import math
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any
from urllib.parse import urljoin, urlsplit

from mail_gateway.mail.reader import MessageReader
from mail_gateway.outbox.links import links as message_links

PER_LINK_SECONDS = 5.0
TOTAL_SECONDS = 20.0
MAX_BYTES = 64 * 1024
MAX_REDIRECTS = 5
MAX_LINKS = 50
PARALLEL = 8
USER_AGENT = "mail-gateway-link-check"


def listed_links(reader: MessageReader) -> list[dict[str, str]]:
    """Each distinct link of the message with its kind, in document order (found as the message's detail finds
    them, ``mail_gateway.outbox.links``)."""
    found: dict[str, str] = {}
    for link in message_links(reader):
        found.setdefault(link["url"], link["kind"])
    return [{"url": url, "kind": kind} for url, kind in found.items()]


def fetchable(url: str) -> bool:
    return urlsplit(url).scheme.lower() in ("http", "https")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect comes back as its response, so each hop is listed and bounded


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


class _Connection(http.client.HTTPConnection):
    """An HTTP connection whose timeout is a deadline for the whole exchange."""

    def connect(self) -> None:
        deadline = time.monotonic() + self.timeout
        super().connect()
        plain = self.sock
        self.sock = _Socket(plain.family, plain.type, plain.proto, fileno=plain.detach())
        self.sock.settimeout(self.timeout)
        self.sock.deadline = deadline


class _TLSConnection(http.client.HTTPSConnection):
    """An HTTPS connection whose timeout is a deadline for the whole exchange (the handshake is bounded by it)."""

    def connect(self) -> None:
        deadline = time.monotonic() + self.timeout
        super().connect()  # wrapped by _TLS, so its socket is a _TLSSocket
        self.sock.deadline = deadline


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_Connection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_TLSConnection, req, context=_TLS)


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects(), _HTTPHandler(),
                                      _HTTPSHandler())


def _get(url: str, timeout: float, deadline: float) -> tuple[int, str | None]:
    """One request: its status and, for a redirect, where to."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
    try:
        response = _OPENER.open(request, timeout=timeout)
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


def timed_out(overall: bool) -> str:
    if overall:
        return f"timed out: the link check's {TOTAL_SECONDS:g} seconds ran out"
    return f"timed out: no complete answer within {PER_LINK_SECONDS:g} seconds"


def check_link(url: str, deadline: float) -> dict[str, Any]:
    """One link fetched, its redirects followed: the result the link check lists."""
    started = time.monotonic()
    link_deadline = min(deadline, started + PER_LINK_SECONDS)
    status, redirects, error, current = None, [], None, url
    while error is None:
        left = link_deadline - time.monotonic()
        if left <= 0:
            error, status = timed_out(link_deadline == deadline), None
            break
        try:
            status, location = _get(current, left, link_deadline)
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            timeout = isinstance(reason, TimeoutError)
            error = timed_out(link_deadline == deadline) if timeout else f"{type(reason).__name__}: {reason}"[:300]
            status = None
            break
        if location is None or not 300 <= status < 400:
            break
        current = urljoin(current, location)
        redirects.append(current)
        if len(redirects) > MAX_REDIRECTS:
            error = f"more than {MAX_REDIRECTS} redirects"
        elif not fetchable(current):
            error = "redirected to a link that is not http or https; not followed"
    elapsed_ms = round((time.monotonic() - started) * 1000)
    return {"url": url, "status": status, "redirects": redirects, "error": error, "elapsed_ms": elapsed_ms}


def check_links(urls: Sequence[str]) -> list[dict[str, Any]]:
    """Each link's result, in order; links that are not http(s) are listed unfetched."""
    started = time.monotonic()
    deadline = started + TOTAL_SECONDS
    pool = ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="link-check")
    try:
        futures = {url: pool.submit(check_link, url, deadline) for url in urls if fetchable(url)}
        wait(futures.values(), timeout=TOTAL_SECONDS)
    finally:
        # Links still waiting are dropped; running ones end at their own deadline, which the sockets keep.
        pool.shutdown(wait=False, cancel_futures=True)
    late = {"status": None, "redirects": [], "error": timed_out(True),
            "elapsed_ms": round((time.monotonic() - started) * 1000)}
    results = {url: future.result() if future.done() and not future.cancelled() else {"url": url, **late}
               for url, future in futures.items()}
    unfetched = {"status": None, "redirects": [], "error": "not fetched: only http and https links are checked",
                 "elapsed_ms": 0}
    return [results.get(url) or {"url": url, **unfetched} for url in urls]
