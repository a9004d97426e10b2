"""The ``Spool`` behind a queued ``Sender``: store rendered messages durably and report each as queued.

Request threads that store at the same time share one change of the store: the first becomes the batch's
leader and hands the store one write, which takes every message that joined the batch by the time it runs (one
multi-row insert per table); the others wait for that write's outcome. One change per request spent most of the
store's CPU on the statements around each message, which held the durable accept rate well below the HTTP
layer's (``make bench``'s queued scenarios show what sharing gains).

A caller whose messages must be committed with its own change passes its ``Transaction`` (a keyed HTTP request,
whose response is recorded in the same commit): the messages join it instead of a batch.

The suppression list is read in the transaction that stores the messages (one query for the whole batch), not in
one of its own per message: that read cost as much as the write it preceded. A suppression committed before the
write began, by any process, is seen by it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from sqlalchemy.engine import Connection

from mail_gateway.errors import StoreUnavailableError
from mail_gateway.mail.rendering import RenderedMessage
from mail_gateway.mail.result import QueuedResult
from mail_gateway.mail.tags import tags_and_metadata
from mail_gateway.mail.verp import bounce_address
from mail_gateway.sending import Transaction
from mail_gateway.settings import GatewaySettings
from mail_gateway.store import messages, suppressions
from mail_gateway.store.database import Store

LeftOut = dict[str, set[str]]  # by message id, its recipients on the suppression list


class _Batch:
    def __init__(self) -> None:
        self.messages: list[messages.NewMessage] = []
        self.left_out: LeftOut = {}
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
        """Every message, ``owner``'s, for its recipients not suppressed, in one transaction: ``transaction`` when
        given (a keyed request's own, committed by its caller), else one shared with the other threads storing
        now. Each result names the recipients left out; one with no recipients left was not stored."""
        now = self.clock()
        ids = [messages.new_id() for _ in rendered]
        new = [messages.NewMessage(id_, m.message_id, self._envelope_from(id_, m), m.recipients, m.data, via,
                                   now, at, max(at or now, now) + self.lifetime, owner, *tags_and_metadata(m.data))
               for id_, m, at in zip(ids, rendered, send_at, strict=True)]
        left_out: LeftOut = {}
        if new and transaction is not None:
            # Its work runs when the request's response is recorded, after this answers: the list is read now.
            left_out = self.store.read(lambda conn: self._screen(conn, new))
            kept = _kept(new, left_out)
            if kept:
                transaction.join(lambda conn: messages.enqueue(conn, kept))
        elif new:
            left_out = self._store(new)
        self.arrived.set()
        return [_result(m, left_out.get(m.id, set())) for m in new]

    def _screen(self, conn: Connection, new: Sequence[messages.NewMessage]) -> LeftOut:
        found = suppressions.suppressed(conn, {r for m in new for r in m.recipients}, now=self.store.clock())
        return {m.id: hit for m in new if (hit := found.intersection(m.recipients))} if found else {}

    def _envelope_from(self, id_: str, message: RenderedMessage) -> str:
        # VERP: the bounce names the queued message; the sender policy has checked the original sender already.
        # The null sender of a bounce or auto-reply stays null (RFC 5321 4.5.5), so bounces cannot loop.
        if self.bounce_domain is None or not message.envelope_from:
            return message.envelope_from
        return bounce_address(self.bounce_domain, id_)

    def _store(self, new: list[messages.NewMessage]) -> LeftOut:
        """Written, with whatever other threads stored meanwhile, before this returns (each message for its
        recipients not suppressed, who was left out returned); else raises, nothing of ``new`` written."""
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
            return batch.left_out
        batch.done.wait()
        if isinstance(batch.error, StoreUnavailableError):
            raise StoreUnavailableError(str(batch.error)) from batch.error
        if batch.error is not None:
            raise batch.error
        return batch.left_out

    def _close(self, batch: _Batch) -> None:
        with self._lock:
            if self._open is batch:
                self._open = None

    def _write(self, conn: Connection, batch: _Batch) -> None:
        self._close(batch)
        batch.left_out = self._screen(conn, batch.messages)
        kept = _kept(batch.messages, batch.left_out)
        if kept:
            messages.enqueue(conn, kept)


def _kept(new: Sequence[messages.NewMessage], left_out: LeftOut) -> list[messages.NewMessage]:
    """What is stored: each message for its recipients not suppressed; none with no recipient left."""
    kept = []
    for m in new:
        hit = left_out.get(m.id)
        if not hit:
            kept.append(m)
        elif recipients := tuple(r for r in m.recipients if r not in hit):
            kept.append(replace(m, recipients=recipients))
    return kept


def _result(m: messages.NewMessage, left_out: set[str]) -> QueuedResult:
    kept = tuple(r for r in m.recipients if r not in left_out)
    return QueuedResult(m.id, m.message_id, m.status, kept, tuple(sorted(left_out)))  # type: ignore[arg-type]
