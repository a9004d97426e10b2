"""The ``Spool`` behind a queued ``Sender``: store rendered messages durably and report each as queued.

Request threads that store at the same time share one change of the store: the first becomes the batch's
leader and hands the store one write, which takes every message that joined the batch by the time it runs (one
multi-row insert per table); the others wait for that write's outcome. One change per request spent most of the
store's CPU on the statements around each message, which held the durable accept rate well below the HTTP
layer's (``make bench``'s queued scenarios show what sharing gains).

A caller whose messages must be committed with its own change passes its ``Transaction`` (a keyed HTTP request,
whose response is recorded in the same commit): the messages join it instead of a batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from sqlalchemy.engine import Connection

from mail_gateway.errors import StoreUnavailableError
from mail_gateway.mail.rendering import RenderedMessage
from mail_gateway.mail.result import QueuedResult
from mail_gateway.mail.verp import bounce_address
from mail_gateway.sending import Transaction
from mail_gateway.settings import GatewaySettings
from mail_gateway.store import messages
from mail_gateway.store.database import Store


class _Batch:
    def __init__(self) -> None:
        self.messages: list[messages.NewMessage] = []
        self.done = threading.Event()
        self.error: BaseException | None = None


class Spool:
    def __init__(self, store: Store, settings: GatewaySettings, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.lifetime = settings.gateway_queue_lifetime
        self.bounce_domain = settings.gateway_bounce_domain
        self.clock = clock
        self.arrived = threading.Event()  # wakes the workers of this process as soon as there is work
        self._lock = threading.Lock()
        self._open: _Batch | None = None  # the batch new messages join until its write takes them

    def put(self, rendered: Sequence[RenderedMessage], *, via: str, send_at: Sequence[float | None],
            owner: str | None = None, transaction: Transaction | None = None) -> list[QueuedResult]:
        """Every message, ``owner``'s, in one transaction: ``transaction`` when given (a keyed request's own,
        committed by its caller), else one shared with the other threads storing now."""
        now = self.clock()
        ids = [messages.new_id() for _ in rendered]
        new = [messages.NewMessage(id_, m.message_id, self._envelope_from(id_, m), m.recipients, m.data, via,
                                   now, at, max(at or now, now) + self.lifetime, owner)
               for id_, m, at in zip(ids, rendered, send_at, strict=True)]
        if new and transaction is not None:
            transaction.join(lambda conn: messages.enqueue(conn, new))
        elif new:
            self._store(new)
        self.arrived.set()
        return [QueuedResult(m.id, m.message_id, m.status, m.recipients) for m in new]  # type: ignore[arg-type]

    def _envelope_from(self, id_: str, message: RenderedMessage) -> str:
        # VERP: the bounce names the queued message; the sender policy has checked the original sender already.
        if self.bounce_domain is None:
            return message.envelope_from
        return bounce_address(self.bounce_domain, id_)

    def _store(self, new: list[messages.NewMessage]) -> None:
        """Written, with whatever other threads stored meanwhile, before this returns; else raises, nothing of
        ``new`` written."""
        with self._lock:
            batch, leader = self._open, self._open is None
            if batch is None:
                batch = self._open = _Batch()
            batch.messages.extend(new)
        if leader:
            try:
                self.store.write(lambda conn: self._write(conn, batch))
            except BaseException as exc:
                batch.error = exc
                raise
            finally:
                self._close(batch)  # a write that never ran (the store too slow) must not take more messages
                batch.done.set()
            return
        batch.done.wait()
        if isinstance(batch.error, StoreUnavailableError):
            raise StoreUnavailableError(str(batch.error)) from batch.error
        if batch.error is not None:
            raise batch.error

    def _close(self, batch: _Batch) -> None:
        with self._lock:
            if self._open is batch:
                self._open = None

    def _write(self, conn: Connection, batch: _Batch) -> None:
        self._close(batch)
        messages.enqueue(conn, batch.messages)
