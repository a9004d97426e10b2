"""A bounded pool of live SMTP connections to one upstream, shared by every request thread.

smtplib has no pool, and the generic pools on PyPI know nothing of SMTP's idle drops, so this one is
written here. At most ``size`` connections exist at once (idle plus borrowed); a borrower waits for a
free slot, and at most ``batch_size`` of them serve batches, so single sends always find the rest. Idle
connections are closed after ``idle_timeout`` seconds by a reaper thread, a connection is
retired after ``max_messages`` transactions, and one the server dropped while it idled is noticed on
borrow (its socket turned readable, and NOOP fails) and replaced. Connections that broke are never
returned: whoever holds one closes it on error, and ``give_back`` drops a closed one.
"""

from __future__ import annotations

import select
import smtplib
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from mail_gateway.backends.smtp import transaction
from mail_gateway.errors import TransientDeliveryError
from mail_gateway.lifecycle import Loop, keep_inherited, reset_after_fork


@dataclass(eq=False)
class PooledConnection:
    smtp: smtplib.SMTP
    last_used: float
    messages: int = 0
    batch: bool = False  # borrowed for a batch: holds one of the batches' slots too


def _discard_all(idle: list[PooledConnection], lock: threading.Lock, polite: bool = True) -> None:
    with lock:
        doomed, idle[:] = list(idle), []
    for conn in doomed:
        if polite:
            transaction.quit_quietly(conn.smtp)
        else:
            conn.smtp.close()


def _reap(pool_ref: weakref.ref[ConnectionPool]) -> bool:
    """Prune the pool; True (the loop ends) once it was collected. Only a weak reference: the pool (and its
    sockets) must stay collectable while the reaper runs."""
    pool = pool_ref()
    if pool is None:
        return True
    pool.prune()
    return False


class ConnectionPool:
    def __init__(self, connect: Callable[[], smtplib.SMTP], *, name: str, size: int, idle_timeout: float,
                 max_messages: int, wait_timeout: float, batch_size: int | None = None) -> None:
        self._connect = connect
        self.name = name
        self.size = size
        self.idle_timeout = idle_timeout
        self.max_messages = max_messages
        self.wait_timeout = wait_timeout
        self.batch_size = size if batch_size is None else min(batch_size, size)
        self._closed = False
        self._start_afresh()
        reset_after_fork(self)

    def _start_afresh(self) -> None:
        self._slots = threading.BoundedSemaphore(self.size)
        self._batch_slots = threading.BoundedSemaphore(self.batch_size)
        self._idle: list[PooledConnection] = []  # most recently used last: reuse the warmest connection
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reaper: Loop | None = None
        # Close idle sockets when the pool is garbage-collected without close(), or the interpreter exits;
        # without QUIT, whose reply could keep an exiting process waiting on a silent server.
        self._finalizer = weakref.finalize(self, _discard_all, self._idle, self._lock, False)
        weakref.finalize(self, self._stop.set)

    def forked(self) -> None:
        """In a forked child (``lifecycle.reset_after_fork``): the parent's connections stay the parent's, left
        unclosed (a QUIT would end its session), and this process opens its own, with a reaper of its own."""
        self._finalizer.detach()
        keep_inherited(self._idle)
        self._start_afresh()

    def borrow(self, *, batch: bool = False) -> PooledConnection:
        """A live connection, reused or new; raises ``DeliveryError`` when none can be had. A ``batch``
        borrower also needs one of the ``batch_size`` slots batches share."""
        if batch and not self._batch_slots.acquire(timeout=self.wait_timeout):
            raise TransientDeliveryError(
                f"{self.name}: the {self.batch_size} pooled connections batches may use stayed busy for "
                f"{self.wait_timeout:g}s (raise MAIL_POOL_BATCH_CONNECTIONS)", backend=transaction.BACKEND,
                upstream=self.name)
        try:
            conn = self._borrow()
        except BaseException:
            if batch:
                self._batch_slots.release()
            raise
        conn.batch = batch
        return conn

    def _borrow(self) -> PooledConnection:
        if not self._slots.acquire(timeout=self.wait_timeout):
            raise TransientDeliveryError(
                f"{self.name}: all {self.size} pooled connections stayed busy for {self.wait_timeout:g}s "
                "(raise MAIL_POOL_SIZE)", backend=transaction.BACKEND, upstream=self.name)
        try:
            while True:
                with self._lock:
                    conn = self._idle.pop() if self._idle else None
                if conn is None:
                    return PooledConnection(self._connect(), time.monotonic())
                if self.alive(conn):
                    return conn
                transaction.quit_quietly(conn.smtp)
        except BaseException:
            self._slots.release()
            raise

    def alive(self, conn: PooledConnection) -> bool:
        """Whether an idle connection can still be used, checked without a round trip when possible."""
        if conn.smtp.sock is None or time.monotonic() - conn.last_used >= self.idle_timeout:
            return False
        try:
            readable, _, _ = select.select([conn.smtp.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        # Nothing should arrive on an idle SMTP connection: readable means the server closed it or sent a
        # farewell (421). TLS can also deliver session tickets late, so let NOOP decide.
        return not readable or transaction.noop_ok(conn.smtp)

    def give_back(self, conn: PooledConnection) -> None:
        """Return a borrowed connection; a closed, worn-out or orphaned one is closed instead."""
        try:
            if conn.smtp.sock is None or conn.messages >= self.max_messages or self._closed:
                transaction.quit_quietly(conn.smtp)
                return
            conn.last_used = time.monotonic()
            with self._lock:
                self._idle.append(conn)
            self._start_reaper()
        finally:
            if conn.batch:
                conn.batch = False
                self._batch_slots.release()
            self._slots.release()

    def prune(self) -> None:
        """Close the connections idle for ``idle_timeout`` seconds or more."""
        now = time.monotonic()
        with self._lock:
            expired = [c for c in self._idle if now - c.last_used >= self.idle_timeout]
            self._idle[:] = [c for c in self._idle if c not in expired]
        for conn in expired:
            transaction.quit_quietly(conn.smtp)

    def close(self) -> None:
        """Say QUIT on every idle connection now; borrowed ones are closed when they come back. A closed pool
        still lends connections but keeps none: each is closed when it is given back."""
        self._closed = True
        self._stop.set()
        _discard_all(self._idle, self._lock)

    def _start_reaper(self) -> None:
        if self._reaper is not None:
            return
        with self._lock:
            if self._reaper is not None:
                return
            interval = min(max(self.idle_timeout / 4, 0.05), 5.0)
            pool_ref = weakref.ref(self)
            self._reaper = Loop(f"smtp-pool-reaper {self.name}", lambda: _reap(pool_ref), every=interval,
                                stopping=self._stop).start()
