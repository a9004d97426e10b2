"""Background threads, all started and stopped one way.

A ``Loop`` is a named daemon thread that runs one step over and over until its ``stopping`` event is set. Its waits
are waits on that event (``stopping.wait(t)``, never ``time.sleep(t)``), or on something its ``wake`` callback sets,
so ``stop`` ends any of them at once. ``stop`` never hangs: it joins within a bound, and a thread still running then
is logged and left (a daemon thread keeps no process alive). A step that raises is logged, and the loop goes on after
``retry`` seconds, or ends, as its owner chose. This module imports nothing of the gateway, so every floor may use it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

log = logging.getLogger("mail_gateway.lifecycle")


class Loop:
    def __init__(self, name: str, step: Callable[[], object], *, every: float = 0.0,
                 stopping: threading.Event | None = None, wake: Callable[[], object] | None = None,
                 retry: float | None = 1.0, until_done: bool = False) -> None:
        """``step`` runs after each wait of ``every`` seconds (0: again at once; it then waits itself, on
        ``stopping`` or on what ``wake`` sets when stopping). A step that returns True ends the loop.
        ``stopping`` may be shared by the loops of one owner. ``retry``: seconds before the next step after one
        raised; None ends the loop then. ``until_done``: the stop event does not end the loop, only its step does
        (it drains a queue up to the stop marker ``wake`` put there)."""
        self.name, self.every, self.retry, self.until_done = name, every, retry, until_done
        self._step, self._wake = step, wake
        self.stopping = stopping if stopping is not None else threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __repr__(self) -> str:
        return f"<Loop {self.name} {'running' if self.alive else 'ended'}>"

    def start(self) -> Loop:
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def signal(self) -> None:
        """Ask the loop to end, waking whatever it waits on; ``join`` waits for it."""
        self.stopping.set()
        if self._wake is not None:
            self._wake()

    def join(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the thread to end; False (logged) when it did not."""
        if self._thread.ident is None or self._thread is threading.current_thread():
            return not self.alive
        self._thread.join(max(timeout, 0.0))
        if self._thread.is_alive():
            log.error("background thread %s did not stop within %.1f s; it is left running", self.name, timeout)
            return False
        return True

    def stop(self, timeout: float = 5.0) -> bool:
        """Signal, then join within ``timeout`` seconds; whether the thread ended."""
        self.signal()
        return self.join(timeout)

    def _run(self) -> None:
        while self.until_done or not self.stopping.wait(self.every):
            try:
                if self._step() is True:
                    return
            except Exception:  # the owner chose whether one failure ends the loop; either way it is told
                if self.retry is None:
                    log.exception("background thread %s failed; it ends", self.name)
                    return
                log.exception("background thread %s failed; it goes on in %g s", self.name, self.retry)
                self.stopping.wait(self.retry)


def stop_all(loops: Iterable[Loop], timeout: float) -> bool:
    """Signal every loop at once, then join each within what is left of ``timeout``; whether all ended."""
    loops = list(loops)
    for loop in loops:
        loop.signal()
    deadline = time.monotonic() + timeout
    return all([loop.join(deadline - time.monotonic()) for loop in loops])
