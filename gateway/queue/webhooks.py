"""Send webhook deliveries: Standard Webhooks signatures (the ``standardwebhooks`` package), durable retries.

Each delivery is a row in the store, written with the outcome it reports. A claiming thread claims due rows, as
many as ``IN_FLIGHT`` sending threads are free to take at once (so one slow request never holds the others), and
each POSTs one with the ``webhook-id`` (the same on every retry), ``webhook-timestamp`` and ``webhook-signature``
headers, within ``GATEWAY_WEBHOOK_TIMEOUT`` for the whole request (``webhook_http``), then records the answer: 2xx
delivered; 410 Gone stops every delivery to that endpoint (logged); anything else (a redirect, a reply cut off,
not HTTP or late, any error of the attempt) is retried with exponential backoff from
``GATEWAY_WEBHOOK_BACKOFF_MIN`` for up to a day. The threads outlive any failure: a failing round is logged, the
claiming starts again, and ``/readyz`` reports it until a round succeeds (``failing``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable
from datetime import UTC, datetime

from standardwebhooks import Webhook

from mail_gateway.backends.backoff import Backoff
from mail_gateway.errors import StoreUnavailableError
from mail_gateway.lifecycle import Loop, stop_all
from mail_gateway.queue.webhook_http import Reply, post
from mail_gateway.settings import GatewaySettings
from mail_gateway.store import webhooks as rows
from mail_gateway.store.database import Store

log = logging.getLogger("mail_gateway.webhooks")
GIVE_UP_AFTER = 24 * 60 * 60
IN_FLIGHT = 4  # requests at once; events carry their own timestamp, and retries reorder them anyway
IDLE = 0.2  # seconds between looks for due deliveries (and whether to stop)
RESTART_DELAY = 1.0  # seconds before claiming again after a failing round
_running: weakref.WeakSet[WebhookSender] = weakref.WeakSet()


def failing(store: Store) -> str | None:
    """Why a webhook sender of this process on ``store`` is not sending as it should, or None (readiness)."""
    for sender in list(_running):
        if sender.store is store and (trouble := sender.trouble()) is not None:
            return trouble
    return None


class WebhookSender:
    def __init__(self, settings: GatewaySettings, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        assert settings.gateway_webhook_secret is not None
        # Several secrets while the endpoint moves to a new one: each delivery is signed by all of them, the
        # signatures separated by spaces, and a receiver verifying with either secret accepts it.
        self.signers = [Webhook(secret) for secret in settings.webhook_secrets]
        self.store, self.clock = store, clock
        self.timeout = settings.gateway_webhook_timeout
        self.lease = max(settings.gateway_queue_lease, self.timeout * 2)
        self.backoff = Backoff(settings.gateway_webhook_backoff_min, 60 * 60)
        self.fault: str | None = None
        self._free = threading.Semaphore(IN_FLIGHT)  # sending threads with nothing to send
        self._due: queue.SimpleQueue[rows.WebhookDue | None] = queue.SimpleQueue()  # None: a sending loop ends
        self._stopping = threading.Event()
        self._claiming = Loop("webhooks", self._claim_once, stopping=self._stopping)
        # The sending loops send what was claimed, up to a stop marker each: a SimpleQueue.get(timeout) can wait
        # past its timeout (CPython 3.11, several threads waiting), so stop() wakes them with the marker.
        self._sending = [Loop(f"webhooks-send-{n}", self._send_once, stopping=self._stopping, until_done=True,
                              wake=lambda: self._due.put(None), retry=0.0) for n in range(IN_FLIGHT)]

    def start(self) -> None:
        for loop in (self._claiming, *self._sending):
            loop.start()
        _running.add(self)

    def stop(self) -> None:
        """Stop claiming; requests in flight end (within the timeout) and are recorded."""
        self._claiming.stop(self.timeout + 5)
        stop_all(self._sending, self.timeout + 5)  # after the claiming: what it claimed is ahead of the markers
        _running.discard(self)

    def trouble(self) -> str | None:
        if self._stopping.is_set():
            return None
        if any(not loop.alive for loop in (self._claiming, *self._sending)):
            return "a webhook thread has stopped"
        return self.fault

    def _claim_once(self) -> None:
        try:
            self._claim_round()
            self.fault = None
        except Exception as exc:  # nothing may end the claiming: every later event would wait forever
            self.fault = f"{type(exc).__name__}: {exc}"
            log.exception("the webhook sender failed; it claims again in %g s", RESTART_DELAY)
            self._stopping.wait(RESTART_DELAY)

    def _claim_round(self) -> None:
        """Claim as many due deliveries as there are free sending threads (none waits under a running lease)."""
        if not self._free.acquire(timeout=IDLE):
            return
        free = 1
        while free < IN_FLIGHT and self._free.acquire(blocking=False):
            free += 1
        due: list[rows.WebhookDue] = []
        try:
            due = self.store.write(lambda conn: rows.claim(conn, now=self.clock(), limit=free, lease=self.lease))
        except StoreUnavailableError as exc:
            log.error("could not claim webhook deliveries: %s", exc)
        finally:
            for _ in range(free - len(due)):
                self._free.release()
        for delivery in due:
            self._due.put(delivery)
        if not due:
            self._stopping.wait(IDLE)

    def _send_once(self) -> bool:
        try:
            delivery = self._due.get(timeout=IDLE)
        except queue.Empty:
            return False
        if delivery is None:
            return True
        try:
            self.send(delivery)
        except Exception:  # not recorded: the lease ends and the delivery is claimed again
            log.exception("webhook %s to %s could not be sent or recorded", delivery.id, delivery.url)
        finally:
            self._free.release()
        return False

    def send(self, delivery: rows.WebhookDue) -> None:
        now = self.clock()
        try:
            at = datetime.fromtimestamp(now, UTC)
            signature = " ".join(signer.sign(delivery.id, at, delivery.payload) for signer in self.signers)
            headers = {"webhook-id": delivery.id, "webhook-timestamp": str(int(now)), "webhook-signature": signature}
            reply = post(delivery.url, delivery.payload.encode(), headers, self.timeout)
        except Exception as exc:  # whatever went wrong, it is this attempt's failure, retried like any other
            reply = Reply(None, f"{type(exc).__name__}: {exc}")
        self._record(delivery, now, reply)

    def _record(self, delivery: rows.WebhookDue, now: float, reply: Reply) -> None:
        code, error = reply.code, reply.error
        if error is None:
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
