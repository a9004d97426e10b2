"""Delivery workers: claim due messages under a lease, deliver them through the one send path, record outcomes.

One claiming thread keeps up to twice ``GATEWAY_QUEUE_WORKERS`` messages claimed; that many delivery threads
each take one, read its body, hand it to the backend (``Sender.deliver_now``: the same pooled SMTP, failover and
``delivery`` log line as direct mode) and record what happened. A lease thread renews the claims in hand, so a
long delivery is never claimed twice, while a process that dies loses its claims when their lease ends. On
``stop()`` (SIGTERM) claiming stops, deliveries in flight finish and record, and untried claims are released.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from mail_gateway.backends.backoff import Backoff
from mail_gateway.errors import StoreUnavailableError
from mail_gateway.mail.rendering import RenderedMessage
from mail_gateway.queue import metrics
from mail_gateway.queue.leases import Held
from mail_gateway.queue.outcomes import asks_to_slow_down, attempt_for
from mail_gateway.queue.pacing import Pacing
from mail_gateway.queue.recorder import Recorder
from mail_gateway.queue.webhooks import WebhookSender
from mail_gateway.sending import Sender
from mail_gateway.store import claims
from mail_gateway.store.compact import Compactor
from mail_gateway.store.database import Store
from mail_gateway.store.notify import Listener

log = logging.getLogger("mail_gateway.queue")
IDLE_POLL = 0.2  # seconds a delivery thread waits for a claim before it looks whether to stop
BUSY_RETRY = 0.05  # seconds before claiming again when due messages were all being claimed by others
PURGE_EVERY = 60.0
CLAIM_BATCH = 32  # messages claimed at once, at least; a process holds up to twice its claim batch


class DeliveryWorkers:
    def __init__(self, sender: Sender, store: Store, *, concurrency: int | None = None,
                 wakeup: threading.Event | None = None, clock: Callable[[], float] = time.time) -> None:
        settings = sender.settings
        self.sender, self.store, self.clock = sender, store, clock
        self.concurrency = concurrency or settings.gateway_queue_workers
        self.claim_batch = max(self.concurrency, CLAIM_BATCH)
        self.lease = settings.gateway_queue_lease
        self.lifetime = settings.gateway_queue_lifetime
        self.webhook_url = settings.gateway_webhook_url
        self.backoff = Backoff(settings.gateway_queue_backoff_min, settings.gateway_queue_backoff_max)
        self.pacing = Pacing(settings.mail_rate_limit, self.backoff)
        self.poll = settings.gateway_queue_poll_interval
        # New work wakes the claiming thread: work this process stored (``wakeup``) and, on PostgreSQL, work any
        # process stored (LISTEN/NOTIFY). Without notices it looks every poll interval, and when work comes due.
        self.notify = settings.gateway_queue_notify
        self.wakeup = wakeup if wakeup is not None and self.notify else threading.Event()
        self.listener: Listener | None = None
        self.webhooks = WebhookSender(settings, store, clock=clock) if self.webhook_url else None
        self._ready: queue.SimpleQueue[claims.Claimed] = queue.SimpleQueue()
        self.held = Held(store, self.lease, clock)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.recorder = Recorder(store, self.webhook_url, self._recorded)

    def start(self) -> DeliveryWorkers:
        self.store.open()
        if self.notify:
            self.listener = self.store.listen(self.wakeup)
        targets = [("queue-claim", self._claim_loop), ("queue-lease", self._lease_loop)]
        targets += [(f"queue-deliver-{n}", self._deliver_loop) for n in range(self.concurrency)]
        if not self.store.shared:  # on PostgreSQL, autovacuum reuses the space of deleted bodies by itself
            interval = self.sender.settings.gateway_store_compact_interval
            targets.append(("store-compact", Compactor(self.store, interval, self._stopping).run))
        for name, target in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self.recorder.start()
        if self.webhooks is not None:
            self.webhooks.start()
        log.info("delivery workers: %d at once, store %s", self.concurrency, self.store.describe())
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Stop claiming, let deliveries in flight finish, release the claims not yet tried."""
        self._stopping.set()
        self.wakeup.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.1))
        untried = []
        while not self._ready.empty():
            untried.append(self._ready.get_nowait())
        if untried:
            try:
                self.store.write(lambda conn: claims.release(conn, untried, self.clock()))
            except StoreUnavailableError as exc:
                log.error("could not release %d claimed messages (their lease will end): %s", len(untried), exc)
        self.recorder.stop()
        if self.webhooks is not None:
            self.webhooks.stop()
        if self.listener is not None:
            self.listener.stop()
        self.store.writer.stop()

    # -- claiming ------------------------------------------------------------------------------------------

    def _claim_loop(self) -> None:
        next_purge = 0.0
        while not self._stopping.is_set():
            self.wakeup.clear()  # from here on, a notice wakes the wait below rather than being lost
            held = len(self.held)
            # Claimed in batches (half the claims kept in hand at a time): a claim costs a transaction, whatever
            # its size, and the delivery threads still always have the next message waiting.
            room = 2 * self.claim_batch - held if held <= self.claim_batch else 0
            granted, wait = self.pacing.allowance(room) if room > 0 else (0, self.poll)
            if granted:
                claimed = self._claim(granted)
                wait = 0.0 if claimed else self._idle_wait()
            if time.monotonic() >= next_purge:
                next_purge = time.monotonic() + PURGE_EVERY
                self._purge()
            if wait:
                self.wakeup.wait(wait)

    def _idle_wait(self) -> float:
        """Until the next message comes due, at most the poll interval."""
        try:
            due = self.store.read(claims.next_due)
        except StoreUnavailableError:
            return self.poll
        if due is None:
            return self.poll
        ahead = due - self.clock()
        return min(self.poll, ahead) if ahead > 0 else min(self.poll, BUSY_RETRY)

    def _claim(self, limit: int) -> int:
        try:
            found = self.held.claim(limit)
        except StoreUnavailableError as exc:
            log.error("could not claim queued messages: %s", exc)
            self._stopping.wait(1.0)
            return 0
        for claimed in found:
            self._ready.put(claimed)
        return len(found)

    def _purge(self) -> None:
        try:
            self.store.write(lambda conn: claims.purge_finished(conn, self.clock() - self.lifetime), wait=False)
        except StoreUnavailableError:
            pass

    def _lease_loop(self) -> None:
        while not self._stopping.wait(self.lease / 3):
            self.held.renew()

    # -- delivering ----------------------------------------------------------------------------------------

    def _deliver_loop(self) -> None:
        # Each delivery borrows a pooled connection and gives it back, as a request thread does: a thread that kept
        # one for good (``backend.hold()``) would leave workers beyond MAIL_POOL_SIZE without any.
        while not self._stopping.is_set():
            try:
                claimed = self._ready.get(timeout=IDLE_POLL)
            except queue.Empty:
                continue
            if self._stopping.is_set():
                self._ready.put(claimed)  # released by stop()
                return
            tried = False
            try:
                tried = self._deliver(claimed)
            except Exception:  # a bug or a broken backend must not kill the thread; the lease ends it
                log.exception("delivering queued message %s failed unexpectedly", claimed.id)
            finally:
                if not tried:  # else it is let go once its outcome is recorded
                    self._let_go([claimed.id])

    def _let_go(self, ids: list[str]) -> None:
        self.held.let_go(ids)
        self.wakeup.set()

    def _recorded(self, attempts: list[claims.Attempt]) -> None:
        self._let_go([attempt.message.id for attempt in attempts])

    def _deliver(self, claimed: claims.Claimed) -> bool:
        """Whether it was tried (its outcome then goes to the recorder)."""
        # A small body came with the claim; a message canceled since then is still sent: like an attempt in
        # flight, its recipients stay canceled and the delivery is logged.
        data = claimed.data
        if data is None:  # a large body, read only now
            data = self.store.read(lambda conn: claims.body(conn, claimed.id))
        if data is None or not claimed.recipients:
            return False  # canceled (or done) since it was claimed
        message = RenderedMessage(claimed.message_id, claimed.envelope_from,
                                  tuple(email for _, email, _ in claimed.recipients), data)
        [outcome] = self.sender.deliver_now([message], via="queue", id=claimed.id)
        attempt = attempt_for(claimed, outcome, self.clock(), self.backoff)
        metrics.count_attempt(attempt)
        if asks_to_slow_down(outcome):
            log.warning("the upstream asked to slow down (%s); claiming paused for %.1f s", outcome.smtp_code,
                        self.pacing.slow_down())
        else:
            self.pacing.succeeded()
        self.recorder.add(attempt)  # the recorder lets the message go once its outcome is written
        return True
