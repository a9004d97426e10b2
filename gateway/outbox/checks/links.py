"""A message's links (every ``href`` and ``src`` of its HTML, and the web addresses of its text) and, on request,
each http(s) one fetched with bounded time and size.

Each link gets ``PER_LINK_SECONDS`` and at most ``fetch.MAX_BYTES`` of its body read (the status is what matters,
the body is only drained), all of them together ``TOTAL_SECONDS``. Both are deadlines, not idle timeouts: each read
of a link's socket waits only for what is left of its time, so a server sending a byte at a time is cut off, and a
link still unfinished when the overall time is up (its name still resolving, say) is reported as timed out. Up to
``MAX_REDIRECTS`` redirects are followed and listed. Links are fetched a few at a time (``fetch``); other schemes
(mailto:, cid:, data:) are never fetched. Names are looked up on a few threads the whole process shares
(``lookup``), so lookups that never answer cannot pile up threads. A link whose check fails in a way nothing here
expected is reported as that link's result, and the other links are still checked.
"""

from __future__ import annotations

import http.client
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any
from urllib.parse import urljoin, urlsplit

from mail_gateway.mail.reader import MessageReader
from mail_gateway.outbox.checks.addresses import InternalAddress
from mail_gateway.outbox.checks.fetch import get, opener
from mail_gateway.outbox.checks.lookup import LOOKUPS, LookupBusy, NameLookups
from mail_gateway.outbox.links import links as message_links

PER_LINK_SECONDS = 5.0
TOTAL_SECONDS = 20.0
MAX_REDIRECTS = 5
MAX_LINKS = 50
PARALLEL = 8
BUSY = "could not check: name lookup busy"
INTERNAL = "could not check: internal error"
log = logging.getLogger("mail_gateway.outbox")


def listed_links(reader: MessageReader) -> list[dict[str, str]]:
    """Each distinct link of the message with its kind, in document order (found as the message's detail finds
    them, ``mail_gateway.outbox.links``)."""
    found: dict[str, str] = {}
    for link in message_links(reader):
        found.setdefault(link["url"], link["kind"])
    return [{"url": url, "kind": kind} for url, kind in found.items()]


def fetchable(url: str) -> bool:
    try:
        scheme = urlsplit(url).scheme
    except ValueError:  # a malformed host ("http://[oops/"): fetched all the same, so its error is that link's
        scheme = url.partition(":")[0]
    return scheme.lower() in ("http", "https")


def timed_out(overall: bool) -> str:
    if overall:
        return f"timed out: the link check's {TOTAL_SECONDS:g} seconds ran out"
    return f"timed out: no complete answer within {PER_LINK_SECONDS:g} seconds"


def check_link(url: str, deadline: float, fetcher: urllib.request.OpenerDirector) -> dict[str, Any]:
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
            status, location = get(fetcher, current, left, link_deadline)
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            reason, status = getattr(exc, "reason", exc), None
            if isinstance(reason, LookupBusy):
                error = BUSY
            elif isinstance(reason, InternalAddress):
                error = str(reason)
            elif isinstance(reason, TimeoutError):
                error = timed_out(link_deadline == deadline)
            else:
                error = f"{type(reason).__name__}: {reason}"[:300]
            break
        if location is None or not 300 <= status < 400:
            break
        try:
            current = urljoin(current, location)
        except ValueError:  # "http://[oops/": no address to follow
            error = f"redirected to a malformed address ({location[:200]}); not followed"
            break
        redirects.append(current)
        if len(redirects) > MAX_REDIRECTS:
            error = f"more than {MAX_REDIRECTS} redirects"
        elif not fetchable(current):
            error = "redirected to a link that is not http or https; not followed"
    elapsed_ms = round((time.monotonic() - started) * 1000)
    return {"url": url, "status": status, "redirects": redirects, "error": error, "elapsed_ms": elapsed_ms}


def _checked(url: str, deadline: float, fetcher: urllib.request.OpenerDirector) -> dict[str, Any]:
    """``check_link``, with a failure nothing there expected reported as this link's result: the others are still
    checked. The log names the exception's type alone, as its message may hold the link (and a token in it)."""
    started = time.monotonic()
    try:
        return check_link(url, deadline, fetcher)
    except Exception as exc:
        log.warning("link check: %s while checking a link; reported as %r", type(exc).__name__, INTERNAL)
        return {"url": url, "status": None, "redirects": [], "error": INTERNAL,
                "elapsed_ms": round((time.monotonic() - started) * 1000)}


def check_links(urls: Sequence[str], lookups: NameLookups = LOOKUPS, *, internal: bool = False) -> list[dict[str, Any]]:
    """Each link's result, in order; links that are not http(s) are listed unfetched. Names are looked up on
    ``lookups`` (the process's unless a test gives its own); only public addresses are fetched unless
    ``internal`` (GATEWAY_OUTBOX_ALLOW_INTERNAL_LINKS)."""
    started = time.monotonic()
    deadline = started + TOTAL_SECONDS
    fetcher = opener(lookups, internal=internal)
    pool = ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="link-check")
    try:
        futures = {url: pool.submit(_checked, url, deadline, fetcher) for url in urls if fetchable(url)}
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
