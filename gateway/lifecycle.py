"""Background threads, all started and stopped one way.

A ``Loop`` is a named daemon thread that runs one step over and over until its ``stopping`` event is set. Its waits
are waits on that event (``stopping.wait(t)``, never ``time.sleep(t)``), or on something its ``wake`` callback sets,
so ``stop`` ends any of them at once. ``stop`` never hangs: it joins within a bound, and a thread still running then
is logged and left (a daemon thread keeps no process alive). A step that raises is logged, and the loop goes on after
``retry`` seconds, or ends, as its owner chose. This module imports nothing of the gateway, so every floor may use it.

A fork copies no thread but every socket. A process forked from one that has already sent (a preloading server's
workers, gunicorn ``--preload`` or uWSGI without ``lazy-apps``; a script's multiprocessing pool, fork being Linux's
start method before Python 3.14) would speak on its parent's pooled SMTP and store connections, two processes'
commands interleaved on one session, and wait on a writer thread it does not have. So what holds such things
registers itself (``reset_after_fork``), and in the child each is told to start afresh (``forked``), leaving the
parent's connections referenced and never closed (``keep_inherited``): closing some (PostgreSQL's goodbye) would
end the parent's session too.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Protocol

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


class Forkable(Protocol):
    def forked(self) -> None:
        """In a forked child: drop what is the parent's (its connections, threads and locks) to start afresh."""


_forkable: weakref.WeakSet[Forkable] = weakref.WeakSet()
_inherited: list[object] = []  # the parent's connections, in a child: referenced so that no collection closes them


def reset_after_fork(owner: Forkable) -> None:
    """Have ``owner.forked()`` called in each child this process forks, while ``owner`` lives."""
    _forkable.add(owner)


def keep_inherited(*things: object) -> None:
    _inherited.extend(thing for thing in things if thing is not None)


def _in_forked_child() -> None:
    for owner in list(_forkable):
        try:
            owner.forked()
        except Exception:  # one owner's failure must not leave the others sharing their parent's connections
            log.exception("resetting %r after a fork failed", owner)


os.register_at_fork(after_in_child=_in_forked_child)
