"""The URL a webhook is POSTed to (GATEWAY_WEBHOOK_URL, each of GATEWAY_INBOUND_ROUTES), checked at start-up as
the sender reads it (``mail_gateway.queue.webhook_http``): one it would not send as written stops start-up, rather
than fail or mislead every event for a day. Messages never repeat the URL, which may hold a secret."""

from __future__ import annotations

from urllib.parse import SplitResult

from mail_gateway.settings.hosts import check_host, split_url

MAX_URL_CHARS = 8192  # the longest request line most servers take (and the longest line the sender reads)


def check_webhook_url(url: str) -> str:
    """``url``, or ``ValueError`` saying what is wrong with it and how to fix it."""
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"it is longer than {MAX_URL_CHARS} characters, more than servers take in a request line")
    if any(c.isspace() or not c.isprintable() for c in url):
        # urlsplit drops CR, LF and tab without a word, so the URL sent would not be the one configured.
        raise ValueError("it holds a space or a control character; percent-encode it (a space is %20)")
    parts = split_url(url)
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range: urllib's message would quote it
        raise ValueError("it cannot be read as a URL (its port); check its host and port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("it is not an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        # Never sent (the sender has no Basic auth), yet kept in the store and written in every failure's log line.
        raise ValueError("it holds a user name or password (user:password@), which would be written in the logs "
                         "and is never sent; remove it: each event's webhook-signature header authenticates it")
    _check_host(parts, port)
    return url


def _check_host(parts: SplitResult, port: int | None) -> None:
    if port == 0 or parts.netloc.endswith(":"):
        raise ValueError("its port is empty or 0; give a port from 1 to 65535, or none for the scheme's own")
    check_host(parts.hostname or "", parts.scheme)
