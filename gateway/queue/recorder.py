"""Record delivery outcomes in batches: one thread takes every outcome the delivery threads finished since its
last write and records them all in one change of the store (``mail_gateway.store.recording``).

Recording each outcome on its own cost the store's writer more CPU than the delivery itself (measured in
``make bench``); in batches a busy worker records dozens per change. A message stays in its worker's hands, its
lease renewed, until its outcome is written: were it let go first, a store too slow to answer would let the lease
end and another worker send the message again.

A store that does not answer is waited for, the outcomes finished meanwhile joining the batch. A store that refuses
a batch (``StoreRejectedError``: trying it again would fail again) gets its outcomes one by one, so that one it
cannot take spoils only itself; that one is tried once more without the upstream's reply text, and if the store
refuses even that, it is logged with its message's id and dropped. Outcomes of messages claimed from a store file
since deleted and recreated are dropped: the new file never held those messages.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from dataclasses import replace

from mail_gateway.errors import StoreRejectedError, StoreUnavailableError
from mail_gateway.lifecycle import Loop
from mail_gateway.store.claims import Attempt
from mail_gateway.store.database import Store
from mail_gateway.store.recording import record_all

log = logging.getLogger("mail_gateway.queue")
RETRY_SECONDS = 0.5
GATHER_SECONDS = 0.005  # a moment for the other delivery threads' outcomes to join the batch
UNSTORED = "(the upstream's reply could not be stored)"


class Recorder:
    def __init__(self, store: Store, webhook_url: str | None, recorded: Callable[[list[Attempt]], None]) -> None:
        """``recorded`` hears each batch once it is written (or given up)."""
        self.store, self.webhook_url, self.recorded = store, webhook_url, recorded
        self._outcomes: queue.SimpleQueue[Attempt | None] = queue.SimpleQueue()
        self._ended = False  # the stop marker was taken from the queue
        # Until its step takes the stop marker: what was waiting before it is written first.
        self._loop = Loop("queue-record", self._record_once, wake=lambda: self._outcomes.put(None), retry=0.0,
                          until_done=True)
        self._stopping = self._loop.stopping

    def start(self) -> None:
        self._loop.start()

    def add(self, attempt: Attempt) -> None:
        self._outcomes.put(attempt)

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is waiting, then end the thread."""
        self._loop.stop(timeout)

    def _record_once(self) -> bool:
        first = self._outcomes.get()
        self._stopping.wait(GATHER_SECONDS)
        attempts = self._waiting([first])
        if attempts:
            self._write(attempts)
            self.recorded(attempts)
        return self._ended

    def _waiting(self, batch: list[Attempt | None]) -> list[Attempt]:
        """``batch`` and every outcome waiting behind it; notes the stop marker."""
        while True:
            try:
                batch.append(self._outcomes.get_nowait())
            except queue.Empty:
                break
        self._ended = self._ended or None in batch
        return [a for a in batch if a is not None]

    def _write(self, attempts: list[Attempt]) -> None:
        """Record ``attempts`` (outcomes finished while the store does not answer are added to the list)."""
        try:
            self._until_written(attempts, gather=True)
        except StoreRejectedError as exc:
            if len(attempts) > 1:
                log.warning("the store refused %d delivery outcomes at once (%s); recording them one by one",
                            len(attempts), self._cause(exc))
                for attempt in attempts:
                    self._write_one(attempt)
            else:
                self._write_plain(attempts[0], exc)

    def _write_one(self, attempt: Attempt) -> None:
        try:
            self._until_written([attempt])
        except StoreRejectedError as exc:
            self._write_plain(attempt, exc)

    def _write_plain(self, attempt: Attempt, refused: StoreRejectedError) -> None:
        """The outcome once more, its texts replaced; if even that is refused, dropped (its message's lease ends,
        and the message is tried again where it is still in the store)."""
        plain = replace(attempt, updates=tuple(replace(u, reason=u.reason and UNSTORED) for u in attempt.updates))
        try:
            if self._until_written([plain]):
                log.warning("the store refused the outcome of message %s (%s); it is recorded without the "
                            "upstream's reply text", attempt.message.id, self._cause(refused))
        except StoreRejectedError as exc:
            log.error("the store refused the outcome of message %s (%s), even without the upstream's reply text "
                      "(%s); it is not recorded", attempt.message.id, self._cause(refused), self._cause(exc))

    def _until_written(self, attempts: list[Attempt], *, gather: bool = False) -> bool:
        """Write, waiting for a store that does not answer (False: given up); raises ``StoreRejectedError`` when
        it refuses."""
        while True:
            try:
                self.store.write(lambda conn: record_all(conn, self._current(attempts), self.webhook_url))
                return True
            except StoreRejectedError:
                raise
            except StoreUnavailableError as exc:
                if self._stopping.is_set():
                    log.error("could not record %d delivery outcomes before stopping (%s); their messages are "
                              "tried again when their lease ends", len(attempts), exc)
                    return False
                log.warning("could not record %d delivery outcomes yet: %s", len(attempts), exc)
                self._stopping.wait(RETRY_SECONDS)
                if gather:
                    attempts.extend(self._waiting([]))
            except Exception:  # a bug must not stop recording; the lease ends these messages' claims
                log.exception("recording %d delivery outcomes failed", len(attempts))
                return False

    def _current(self, attempts: list[Attempt]) -> list[Attempt]:
        """Those claimed from the store's present file (read in the writer, after it noticed a replaced one)."""
        generation = self.store.generation
        old = [a.message.id for a in attempts if a.message.generation != generation]
        if old:
            log.warning("%d delivery outcomes are not recorded: their messages (%s) were claimed from the store file "
                        "since deleted and recreated", len(old), ", ".join(old[:10]))
            return [a for a in attempts if a.message.generation == generation]
        return attempts

    def _cause(self, exc: StoreRejectedError) -> str:
        return self.store.error_text(exc.__cause__ or exc)
