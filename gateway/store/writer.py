"""Group commit: one thread per process writes every change, as many as are waiting in one transaction.

A durable commit costs an fsync, milliseconds on most disks, and SQLite lets one writer in at a time: one
transaction per request would cap the gateway at a few hundred accepted messages a second. Here request threads
hand their change (a function of a connection) to the writer and wait; the writer runs every change that has
queued up, commits once, and wakes them all; should one change fail, the transaction is run again with each change
in its own savepoint, so one failure spoils only itself. No
library offers this for SQLAlchemy, hence the small hand-written loop.

A change waits at most ``WAIT_SECONDS`` in all: one that waited that long in the queue fails without running,
and the lock wait of the transaction is bounded by what is left, so "store unavailable" is always prompt and
always means "not written".
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from mail_gateway.errors import StoreUnavailableError
from mail_gateway.lifecycle import Loop
from mail_gateway.store.engine import WAIT_SECONDS, WRITE, set_lock_wait
from mail_gateway.store.faults import Room, connection_unusable, refusal, rows_written

log = logging.getLogger("mail_gateway.store")
MAX_CHANGES = 512  # per transaction, so one transaction never grows without bound


_CHANGED = "mail_gateway_changed"  # the connection's info key for the tables its transaction changed


def note_change(conn: Connection, table: str) -> None:
    """Mark ``table`` changed by the write transaction of ``conn`` (``Writer.changed`` counts it)."""
    conn.info.setdefault(_CHANGED, set()).add(table)


@dataclass(eq=False)
class Change:
    work: Callable[[Connection], Any]
    deadline: float
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class Writer:
    def __init__(self, connect: Callable[[], Connection], *, prepare: Callable[[], None] = lambda: None,
                 reset: Callable[[], None] = lambda: None,
                 describe: Callable[[BaseException], str] = lambda exc: type(exc).__name__) -> None:
        """``connect`` gives a connection of the store; ``prepare`` runs before each transaction (it recreates a
        store whose file vanished); ``reset`` empties the pool ``connect`` draws on, after an error that leaves
        connections unusable; ``describe`` words an error for the log without any secret."""
        self._connect = connect
        self._prepare = prepare
        self._reset = reset
        self._describe = describe
        self._conn: Connection | None = None
        self.room = Room()  # readiness asks it: a probe that writes nothing passes on a full disk
        self._changes: queue.SimpleQueue[Change | None] = queue.SimpleQueue()
        self._thread: Loop | None = None
        self._lock = threading.Lock()
        # Per table marked by ``note_change``, the write transactions that changed it, counted once each finished
        # (committed or not): a reader that noted the count before it read sees it move for every change its read
        # may have missed (``Suppressions`` keeps its copy of the list by it).
        self.changed: Counter[str] = Counter()

    def write(self, work: Callable[[Connection], Any], *, wait: bool = True) -> Any:
        """Run ``work(conn)`` in a committed transaction and return what it returned. Raises what it raised, or
        ``StoreUnavailableError`` when the store did not answer in time (then nothing of it was written). With
        ``wait=False`` it returns at once; a failure is only logged."""
        change = Change(work, time.monotonic() + WAIT_SECONDS)
        self._start()
        self._changes.put(change)
        if not wait:
            return None
        change.done.wait()
        if change.error is not None:
            raise change.error
        return change.result

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    # Until its step takes the stop marker: every change queued before it is written.
                    self._thread = Loop("store-writer", self._run, wake=lambda: self._changes.put(None), retry=0.0,
                                        until_done=True).start()

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.stop(timeout=10)

    def _run(self) -> bool:
        """One transaction of what is queued; True once the stop marker was taken."""
        batch = [self._changes.get()]
        while len(batch) < MAX_CHANGES:
            try:
                batch.append(self._changes.get_nowait())
            except queue.Empty:
                break
        changes = [c for c in batch if c is not None]
        if changes:
            self._commit(changes)
        if len(changes) < len(batch):
            if self._conn is not None:
                self._conn.close()  # back to the pool, which the store then disposes of
                self._conn = None
            return True
        return False

    def _commit(self, changes: list[Change]) -> None:
        now = time.monotonic()
        late = [c for c in changes if c.deadline <= now]
        live = [c for c in changes if c.deadline > now]
        for change in late:
            change.error = StoreUnavailableError(f"the store did not answer within {WAIT_SECONDS:g} s")
        try:
            if live:
                self._transaction(live, min(c.deadline for c in live) - now)
        except Exception as exc:  # the writer must outlive any failure, or every waiting thread would hang
            log.error("store write failed: %s", self._describe(exc))
            self.room.note(exc, self._describe(exc))
            error = exc if isinstance(exc, StoreUnavailableError) else StoreUnavailableError(
                f"the store could not be written: {type(exc).__name__}")
            for change in live:
                change.error = error
        finally:
            for change in changes:
                change.done.set()

    def drop_connection(self) -> None:
        """Forget the connection kept between transactions (the store's file was replaced; it failed)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except SQLAlchemyError:
                pass

    def _transaction(self, changes: list[Change], wait: float) -> None:
        self._prepare()
        # One connection kept for every transaction of this thread: no checkout, no liveness ping each time.
        if self._conn is None:
            self._conn = self._connect().execution_options(**{WRITE: True})
        conn = self._conn
        written = rows_written(conn) if self.room.noted is not None else None
        info = conn.info  # still there once the connection is dropped
        info.pop(_CHANGED, None)
        try:
            set_lock_wait(conn, wait)
            self._apply_all(conn, changes)
        except Exception as exc:
            self.drop_connection()
            if connection_unusable(exc):  # the pool's connections were opened in the same conditions
                self._reset()
            raise
        finally:
            self.changed.update(info.pop(_CHANGED, ()))
        if written is not None and rows_written(conn) != written:
            self.room.freed()  # rows reached the disk: there is room again

    def _apply_all(self, conn: Connection, changes: list[Change]) -> None:
        if len(changes) == 1:  # alone in its transaction: a failure rolls back only itself anyway
            with conn.begin() as transaction:
                if not self._apply(conn, changes[0]):
                    transaction.rollback()
            return
        if self._all_at_once(conn, changes):
            return
        with conn.begin():
            for change in changes:
                savepoint = conn.begin_nested()
                (savepoint.commit if self._apply(conn, change) else savepoint.rollback)()

    @staticmethod
    def _all_at_once(conn: Connection, changes: list[Change]) -> bool:
        """Every change in the transaction without savepoints, which cost two statements each (SQLAlchemy compiles
        them anew every time); False, with nothing written, when one failed: then each runs again in its own
        savepoint, so that only the failing one fails. Changes are functions of the database alone, so running
        one twice changes nothing."""
        transaction = conn.begin()
        try:
            results = [change.work(conn) for change in changes]
        except Exception:
            transaction.rollback()
            return False
        transaction.commit()
        for change, result in zip(changes, results, strict=True):
            change.result = result
        return True

    def _apply(self, conn: Connection, change: Change) -> bool:
        """Run one change; False (its error kept for its thread) when it failed and must be rolled back."""
        try:
            change.result = change.work(conn)
            return True
        except SQLAlchemyError as exc:
            if connection_unusable(exc):
                raise  # no change can pass on this connection: the transaction fails, the connection is replaced
            log.warning("a store change failed: %s", self._describe(exc))
            self.room.note(exc, self._describe(exc))
            change.error = refusal(exc)
        except Exception as exc:  # handed to the waiting thread, which raises it
            change.error = exc
        return False
