"""Send webhook deliveries: Standard Webhooks signatures (the ``standardwebhooks`` package), durable retries.

Each delivery is a row in the store, written with the outcome it reports. This thread claims due rows, POSTs each
with the ``webhook-id`` (the same on every retry), ``webhook-timestamp`` and ``webhook-signature`` headers, and
records the answer: 2xx delivered; 410 Gone stops every delivery to that endpoint (logged); anything else is
retried with exponential backoff from ``GATEWAY_WEBHOOK_BACKOFF_MIN`` for up to a day.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime

from standardwebhooks import Webhook

from mail_gateway.errors import StoreUnavailableError
from mail_gateway.queue.outcomes import Backoff
from mail_gateway.settings import GatewaySettings
from mail_gateway.store import webhooks as rows
from mail_gateway.store.database import Store

log = logging.getLogger("mail_gateway.webhooks")
GIVE_UP_AFTER = 24 * 60 * 60
TIMEOUT = 10.0
BATCH = 16


def post(url: str, body: str, headers: dict[str, str]) -> tuple[int | None, str | None]:
    """The endpoint's status code, or None and the reason it could not be reached."""
    request = urllib.request.Request(url, data=body.encode(), method="POST",
                                     headers={**headers, "Content-Type": "application/json",
                                              "User-Agent": "mail-gateway"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, str(getattr(exc, "reason", exc))


class WebhookSender:
    def __init__(self, settings: GatewaySettings, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        assert settings.gateway_webhook_secret is not None
        self.signer = Webhook(settings.gateway_webhook_secret.get_secret_value())
        self.store, self.clock = store, clock
        self.lease = max(settings.gateway_queue_lease, TIMEOUT * 2)
        self.backoff = Backoff(settings.gateway_webhook_backoff_min, 60 * 60)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(TIMEOUT + 5)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                due = self.store.write(lambda conn: rows.claim(conn, now=self.clock(), limit=BATCH, lease=self.lease))
            except StoreUnavailableError as exc:
                log.error("could not claim webhook deliveries: %s", exc)
                due = []
            for delivery in due:
                self.send(delivery)
            if not due:
                self._stopping.wait(0.2)

    def send(self, delivery: rows.WebhookDue) -> None:
        now = self.clock()
        signature = self.signer.sign(delivery.id, datetime.fromtimestamp(now, UTC), delivery.payload)
        headers = {"webhook-id": delivery.id, "webhook-timestamp": str(int(now)), "webhook-signature": signature}
        code, error = post(delivery.url, delivery.payload, headers)
        if code is not None and 200 <= code < 300:
            self._settle(delivery, "delivered", code, None, None)
        elif code == 410:
            log.error("webhook endpoint %s answered 410 Gone: no more events are sent to it", delivery.url)
            self._settle(delivery, "gone", code, "410 Gone", None)
            self.store.write(lambda conn: rows.endpoint_gone(conn, delivery.url, now, "410 Gone"), wait=False)
        elif now - delivery.created_at >= GIVE_UP_AFTER:
            log.error("webhook %s to %s given up after a day: %s", delivery.id, delivery.url, error)
            self._settle(delivery, "failed", code, error, None)
        else:
            retry_at = min(now + self.backoff.delay(delivery.attempts + 1), delivery.created_at + GIVE_UP_AFTER)
            log.warning("webhook %s to %s failed (%s); retried in %.1f s", delivery.id, delivery.url, error,
                        retry_at - now)
            self._settle(delivery, "pending", code, error, retry_at)

    def _settle(self, delivery: rows.WebhookDue, status: str, code: int | None, error: str | None,
                retry_at: float | None) -> None:
        self.store.write(lambda conn: rows.settle(conn, delivery, status=status, code=code, error=error,
                                                  retry_at=retry_at), wait=False)
