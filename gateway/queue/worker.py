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
from mail_gateway.backends.keeping import keeping_for
from mail_gateway.errors import StoreUnavailableError
from mail_gateway.lifecycle import Loop, stop_all
from mail_gateway.mail.rendering import RenderedMessage
from mail_gateway.queue import metrics
from mail_gateway.queue.leases import Held
from mail_gateway.queue.outcomes import asks_to_slow_down, attempt_for
from mail_gateway.queue.pacing import Pacing
from mail_gateway.queue.recorder import Recorder
from mail_gateway.queue.webhooks import WebhookSender
from mail_gateway.sending import Sender
from mail_gateway.store import claims, inbound
from mail_gateway.store.compact import Compactor
from mail_gateway.store.database import Store
from mail_gateway.store.notify import Listener

log = logging.getLogger("mail_gateway.queue")
IDLE_POLL = 0.2  # seconds a delivery thread waits for a claim before it looks again (stop() wakes it at once)
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
        # Inbound routes' webhooks are sent by the same sender, with or without delivery events.
        sends_webhooks = self.webhook_url is not None or settings.gateway_inbound_routes is not None
        self.webhooks = WebhookSender(settings, store, clock=clock) if sends_webhooks else None
        self._ready: queue.SimpleQueue[claims.Claimed | None] = queue.SimpleQueue()  # None: a delivery loop ends
        self.held = Held(store, self.lease, clock)
        self._stopping = threading.Event()  # shared by every loop of the workers
        self._loops: list[Loop] = []
        self._next_purge = 0.0
        self.recorder = Recorder(store, self.webhook_url, self._recorded)

    def start(self) -> DeliveryWorkers:
        self.store.open()
        if self.notify:
            self.listener = self.store.listen(self.wakeup)
        stopping = self._stopping
        self._loops = [Loop("queue-claim", self._claim_once, stopping=stopping, wake=self.wakeup.set),
                       Loop("queue-lease", self.held.renew, every=self.lease / 3, stopping=stopping)]
        # Each delivery loop is woken by a stop marker of its own: CPython 3.11's SimpleQueue.get(timeout) can wait
        # past its timeout, until the next put, when several threads wait on one queue.
        self._loops += [Loop(f"queue-deliver-{n}", self._deliver_once, stopping=stopping,
                             wake=lambda: self._ready.put(None)) for n in range(self.concurrency)]
        if not self.store.shared:  # on PostgreSQL, autovacuum reuses the space of deleted bodies by itself
            self._loops.append(Loop("store-compact", Compactor(self.store, stopping).compact, stopping=stopping,
                                    every=self.sender.settings.gateway_store_compact_interval))
        for loop in self._loops:
            loop.start()
        self.recorder.start()
        if self.webhooks is not None:
            self.webhooks.start()
        log.info("delivery workers: %d at once, store %s", self.concurrency, self.store.describe())
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Stop claiming, let deliveries in flight finish, release the claims not yet tried."""
        stop_all(self._loops, timeout)
        untried = []
        while not self._ready.empty():
            claimed = self._ready.get_nowait()
            if claimed is not None:  # not a stop marker
                untried.append(claimed)
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

    def _claim_once(self) -> bool:
        self.wakeup.clear()  # from here on, a notice wakes the wait below rather than being lost
        if self._stopping.is_set():  # stop() set it before the wake-up this clear() may have taken
            return True
        held = len(self.held)
        # Claimed in batches (half the claims kept in hand at a time): a claim costs a transaction, whatever
        # its size, and the delivery threads still always have the next message waiting.
        room = 2 * self.claim_batch - held if held <= self.claim_batch else 0
        granted, wait = self.pacing.allowance(room) if room > 0 else (0, self.poll)
        if granted:
            claimed = self._claim(granted)
            wait = 0.0 if claimed else self._idle_wait()
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + PURGE_EVERY
            self._purge()
        if wait:
            self.wakeup.wait(wait)
        return False

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
            before = self.clock() - self.lifetime
            self.store.write(lambda conn: (claims.purge_finished(conn, before), inbound.purge_before(conn, before)),
                             wait=False)
        except StoreUnavailableError:
            pass

    # -- delivering ----------------------------------------------------------------------------------------

    def _deliver_once(self) -> bool:
        # Each delivery borrows a pooled connection and gives it back, as a request thread does: a thread that kept
        # one for good (``backend.hold()``) would leave workers beyond MAIL_POOL_SIZE without any.
        try:
            claimed = self._ready.get(timeout=IDLE_POLL)
        except queue.Empty:
            return False
        if claimed is None or self._stopping.is_set():
            if claimed is not None:
                self._ready.put(claimed)  # released by stop()
            return True
        tried = False
        try:
            tried = self._deliver(claimed)
        except Exception:  # a bug or a broken backend must not kill the thread; the lease ends it
            log.exception("delivering queued message %s failed unexpectedly", claimed.id)
        finally:
            if not tried:  # else it is let go once its outcome is recorded
                self._let_go([claimed.id])
        return False

    def _let_go(self, ids: list[str]) -> None:
        self.held.let_go(ids)
        self.wakeup.set()

    def _recorded(self, attempts: list[claims.Attempt]) -> None:
        self._let_go([attempt.message.id for attempt in attempts])

    def _deliver(self, claimed: claims.Claimed) -> bool:
        """Whether it was tried (its outcome then goes to the recorder)."""
        # A small body came with the claim: a cancel is refused while the claim's lease lasts (``actions.cancel``),
        # so a message sent from here was never reported canceled.
        data = claimed.data
        if data is None:  # a large body, read only now
            data = self.store.read(lambda conn: claims.body(conn, claimed.id))
        if data is None or not claimed.recipients:
            return False  # canceled (or done) since it was claimed
        message = RenderedMessage(claimed.message_id, claimed.envelope_from,
                                  tuple(email for _, email, _ in claimed.recipients), data)
        with keeping_for(claimed.owner):  # a keeping backend records whose mail it keeps (the per-key outbox)
            [outcome] = self.sender.deliver_now([message], via="queue", on_list=claimed.on_list, id=claimed.id)
        attempt = attempt_for(claimed, outcome, self.clock(), self.backoff)
        metrics.count_attempt(attempt)
        if asks_to_slow_down(outcome):
            log.warning("the upstream asked to slow down (%s); claiming paused for %.1f s", outcome.smtp_code,
                        self.pacing.slow_down())
        else:
            self.pacing.succeeded()
        self.recorder.add(attempt)  # the recorder lets the message go once its outcome is written
        return True
