"""The URL a webhook is POSTed to (GATEWAY_WEBHOOK_URL, each of GATEWAY_INBOUND_ROUTES), checked at start-up as
the sender reads it (``mail_gateway.queue.webhook_http``): one it would not send as written stops start-up, rather
than fail or mislead every event for a day. Messages never repeat the URL, which may hold a secret."""

from __future__ import annotations

from urllib.parse import urlsplit


def check_webhook_url(url: str) -> str:
    """``url``, or ``ValueError`` saying what is wrong with it and how to fix it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("it is not an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        # Never sent (the sender has no Basic auth), yet kept in the store and written in every failure's log line.
        raise ValueError("it holds a user name or password (user:password@), which would be written in the logs "
                         "and is never sent; remove it: each event's webhook-signature header authenticates it")
    return url
