"""Record delivery outcomes in batches: one thread takes every outcome the delivery threads finished since its
last write and records them all in one change of the store (``mail_gateway.store.recording``).

Recording each outcome on its own cost the store's writer more CPU than the delivery itself (measured in
``make bench``); in batches a busy worker records dozens per change. A message stays in its worker's hands, its
lease renewed, until its outcome is written: were it let go first, a store too slow to answer would let the lease
end and another worker send the message again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from mail_gateway.errors import StoreUnavailableError
from mail_gateway.store.claims import Attempt
from mail_gateway.store.database import Store
from mail_gateway.store.recording import record_all

log = logging.getLogger("mail_gateway.queue")
RETRY_SECONDS = 0.5
GATHER_SECONDS = 0.005  # a moment for the other delivery threads' outcomes to join the batch


class Recorder:
    def __init__(self, store: Store, webhook_url: str | None, recorded: Callable[[list[Attempt]], None]) -> None:
        """``recorded`` hears each batch once it is written (or given up at shutdown)."""
        self.store, self.webhook_url, self.recorded = store, webhook_url, recorded
        self._outcomes: queue.SimpleQueue[Attempt | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="queue-record", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, attempt: Attempt) -> None:
        self._outcomes.put(attempt)

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is waiting, then end the thread."""
        self._stopping.set()
        self._outcomes.put(None)
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            batch = [self._outcomes.get()]
            time.sleep(GATHER_SECONDS)
            while True:
                try:
                    batch.append(self._outcomes.get_nowait())
                except queue.Empty:
                    break
            attempts = [a for a in batch if a is not None]
            if attempts:
                self._write(attempts)
            if len(attempts) < len(batch):
                return

    def _write(self, attempts: list[Attempt]) -> None:
        while True:
            try:
                self.store.write(lambda conn: record_all(conn, attempts, self.webhook_url))
                break
            except StoreUnavailableError as exc:
                if self._stopping.is_set():
                    log.error("could not record %d delivery outcomes before stopping (%s); their messages are "
                              "tried again when their lease ends", len(attempts), exc)
                    break
                log.warning("could not record %d delivery outcomes yet: %s", len(attempts), exc)
                self._stopping.wait(RETRY_SECONDS)
            except Exception:  # a bug must not stop recording; the lease ends these messages' claims
                log.exception("recording %d delivery outcomes failed", len(attempts))
                break
        self.recorded(attempts)
