"""Spreading connections over the processes of ``serve --workers N``.

The processes share one listening socket and whichever wakes first accepts, so a burst of keep-alive connections
(a client's pool opening) could land all on one process: it then did all the work while the other idled. Measured
with two processes, the memory backend and eight keep-alive clients: about 1,330 requests/s when every
connection landed on one process against 2,400 when they split.

So each process writes in a table the master shares with them all (an anonymous shared mapping, inherited by every
fork) how many connections it holds, and leaves the next connection to the others while it holds more than one
more than the least loaded of them. A process that starts to leave connections to another wakes that one, with a
byte down a pipe the master made for its row, which its event loop watches: else, once each had left the next
connection to the other, a burst waited for one of them to wake on its own (1,000 idle and 200 slow clients took
about two seconds longer to be accepted). A process that has not written its row for a second (hung) is not waited
for, nor is one that does not accept (stopping, or at its connection limit: it writes infinity), nor one that has
ended (the master writes infinity in its row as it learns of the end).

SO_REUSEPORT, a listening socket per process, was the other way; but the kernel then hashes each connection to a
socket whatever its process holds, so a process at its connection limit or stopping still gets its share, and the
connections waiting in a socket closed on a graceful stop are reset.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import time
from collections.abc import Collection

from waitress.wasyncore import file_dispatcher

SLACK = 1  # connections a process may hold beyond the least loaded other before it leaves the next one to it
# The event loop of a process in the table wakes at least this often, to write its row even when idle...
HEARTBEAT_SECONDS = 0.25
STALE_SECONDS = 4 * HEARTBEAT_SECONDS  # ...so a row not written for this long is a process not to wait for.
_FIELDS = 2  # load, written at (time.monotonic: one clock for every process on the host)


class ConnectionTable:
    """``rows`` rows of (connections held, when written), shared by the processes forked after it is made."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self._memory = mmap.mmap(-1, rows * _FIELDS * 8)
        self._cells = memoryview(self._memory).cast("d")
        for row in range(rows):
            self._cells[row * _FIELDS] = math.inf
        self._wakes = [os.pipe() for _ in range(rows)]  # inherited by the forks, as the mapping is
        for pipe in self._wakes:
            for end in pipe:
                os.set_blocking(end, False)

    def vacate(self, row: int) -> None:
        """The process holding ``row`` has ended: no process waits for it from now on."""
        self._cells[row * _FIELDS] = math.inf

    def free_row(self, taken: Collection[int]) -> int | None:
        """A row no live process holds (the master keeps account), or None: that process then goes unbalanced."""
        return next((row for row in range(self.rows) if row not in taken), None)

    def of(self, row: int) -> ProcessRow:
        return ProcessRow(self._cells, row, self._wakes)


class ProcessRow:
    """One process's row, and the decision it makes from the others'."""

    def __init__(self, cells: memoryview, row: int, wakes: list[tuple[int, int]]) -> None:
        self._cells, self._at = cells, row * _FIELDS
        self.wake_fd = wakes[row][0]  # for this process's event loop to watch (Woken)
        self._wake = {other * _FIELDS: ends[1] for other, ends in enumerate(wakes) if other != row}
        self._leaving = False
        self.write(0)

    def write(self, load: float) -> None:
        """``load``: connections held, or ``math.inf`` while not accepting."""
        self._cells[self._at] = load
        self._cells[self._at + 1] = time.monotonic()

    def may_accept(self, held: int) -> bool:
        """Write ``held`` and say whether this process should take the next connection."""
        self.write(held)
        cells, fresh = self._cells, time.monotonic() - STALE_SECONDS
        least, at = min(((cells[at], at) for at in self._wake if cells[at + 1] >= fresh), default=(math.inf, -1))
        leaving = held > least + SLACK
        if leaving and not self._leaving:  # the one left the next connection may be waiting on its own decline
            with contextlib.suppress(BlockingIOError):  # its pipe is full: it has plenty to wake it already
                os.write(self._wake[at], b"\0")
        self._leaving = leaving
        return not leaving


class Woken(file_dispatcher):
    """The read end of a process's wake pipe in its event loop: a byte from another process ends the loop's wait,
    so that it looks at the listening socket again."""

    def writable(self) -> bool:
        return False

    def handle_read(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self.socket.recv(4096):
                pass
