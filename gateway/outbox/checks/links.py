"""A message's links (every ``href`` and ``src`` of its HTML, and the web addresses of its text) and, on request,
each http(s) one fetched with bounded time and size.

Each link gets ``PER_LINK_SECONDS`` and at most ``MAX_BYTES`` of its body read (the status is what matters, the
body is only drained), all of them together ``TOTAL_SECONDS``; up to ``MAX_REDIRECTS`` redirects are followed and
listed. Links are fetched a few at a time, directly (no proxy from the environment), with urllib; other schemes
(mailto:, cid:, data:) are never fetched.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


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
        while left > 0 and time.monotonic() < deadline:
            chunk = response.read1(min(left, 16384))
            if not chunk:
                break
            left -= len(chunk)
        return response.status, None


def check_link(url: str, deadline: float) -> dict[str, Any]:
    """One link fetched, its redirects followed: the result the link check lists."""
    started = time.monotonic()
    link_deadline = min(deadline, started + PER_LINK_SECONDS)
    status, redirects, error, current = None, [], None, url
    while error is None:
        left = link_deadline - time.monotonic()
        if left <= 0:
            error = f"no answer within {PER_LINK_SECONDS:g} seconds" if status is None else "redirects took too long"
            break
        try:
            status, location = _get(current, left, link_deadline)
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            error, status = f"{type(reason).__name__}: {reason}"[:300], None
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
    deadline = time.monotonic() + TOTAL_SECONDS
    fetched = [url for url in urls if fetchable(url)]
    with ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="link-check") as pool:
        results = dict(zip(fetched, pool.map(lambda url: check_link(url, deadline), fetched), strict=True))
    unfetched = {"status": None, "redirects": [], "error": "not fetched: only http and https links are checked",
                 "elapsed_ms": 0}
    return [results.get(url) or {"url": url, **unfetched} for url in urls]
