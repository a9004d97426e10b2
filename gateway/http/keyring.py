"""The idempotency keys of one app: the store's key operations with this process's clock, lease and mode, and
the leases of the keys this process is working on, renewed until its store closes.

A request with a key holds it as a ``KeyedRequest``, which the route hands down to the sender: the messages a
queued request stores join the transaction that records its response, and a direct batch records each outcome
under its key as it happens.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Connection

from mail_gateway.lifecycle import Loop
from mail_gateway.store import keys
from mail_gateway.store.database import Store
from mail_gateway.store.keys import Begun, StoredResponse

Work = Callable[[Connection], Any]


class Keyring:
    def __init__(self, store: Store, *, mode: str, lease: float, clock: Callable[[], float] = time.time) -> None:
        self.store, self.mode, self.lease, self.clock = store, mode, lease, clock
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()
        self._renewer: Loop | None = None
        store.on_close(self.stop)  # the renewer writes to the store: it ends with it

    def begin(self, key: str, fingerprint: str) -> Begun:
        holder = keys.new_holder()
        return self.store.write(lambda conn: keys.begin(conn, key, fingerprint, mode=self.mode, now=self.clock(),
                                                        lease=self.lease, holder=holder))

    def finish(self, key: str, response: StoredResponse, also: Sequence[Work] = (), holder: str | None = None) -> bool:
        """Record the response, in one transaction with ``also`` (a queued request's messages); False, writing
        nothing, when a retry took the key over from ``holder`` (``keys.holds``)."""
        def work(conn: Any) -> bool:
            if not keys.holds(conn, key, holder):
                return False
            for change in also:
                change(conn)
            keys.finish(conn, key, response)
            return True

        return self.store.write(work)

    def release(self, key: str, holder: str | None = None) -> None:
        self.store.write(lambda conn: keys.release(conn, key, holder))

    def record(self, key: str, position: int, item: dict[str, Any]) -> None:
        """Keep one message's outcome as it happens; not waited for, since the send goes on regardless."""
        self.store.write(lambda conn: keys.record(conn, key, [(position, item)]), wait=False)

    @contextmanager
    def held(self, key: str, holder: str | None = None) -> Iterator[KeyedRequest]:
        """While the request with ``key`` runs its lease is renewed; it is the ``KeyedRequest`` yielded."""
        with self._lock:
            self._held[key] = self._held.get(key, 0) + 1
        self._start_renewer()
        try:
            yield KeyedRequest(self, key, holder)
        finally:
            with self._lock:
                self._held[key] -= 1
                if not self._held[key]:
                    del self._held[key]

    def stop(self, timeout: float = 5.0) -> None:
        """End the renewer (a later keyed request starts it again)."""
        with self._lock:
            renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.stop(timeout)

    def _start_renewer(self) -> None:
        with self._lock:
            if self._renewer is None:
                # A third of the lease: two renewals may fail (a busy store) before a live request looks abandoned.
                self._renewer = Loop("idempotency-leases", self._renew, every=self.lease / 3).start()

    def _renew(self) -> None:
        with self._lock:
            held = list(self._held)
        if held:
            until = self.clock() + self.lease
            self.store.write(lambda conn: keys.renew(conn, held, until), wait=False)


class KeyedRequest:
    """One request with an idempotency key, passed down from its route (a ``sending.Transaction``): what it
    stores joins the transaction that records its response, and each direct outcome is recorded under its key."""

    def __init__(self, keyring: Keyring, key: str, holder: str | None = None) -> None:
        self.keyring, self.key, self.holder = keyring, key, holder
        self.joined: list[Work] = []  # the request's messages, written when its response is (``finish``)

    def join(self, work: Work) -> None:
        self.joined.append(work)

    def record(self, position: int, item: dict[str, Any]) -> None:
        self.keyring.record(self.key, position, item)

    def finish(self, response: StoredResponse) -> bool:
        """False when a retry took the key over: nothing was written (``Keyring.finish``)."""
        return self.keyring.finish(self.key, response, self.joined, self.holder)

    def release(self) -> None:
        self.keyring.release(self.key, self.holder)
