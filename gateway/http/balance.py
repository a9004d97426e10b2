"""Spreading connections over the processes of ``serve --workers N``.

The processes share one listening socket and whichever wakes first accepts, so a burst of keep-alive connections
(a client's pool opening) could land all on one process: it then did all the work while the other idled. Measured
with two processes, the memory backend and eight keep-alive clients: about 1,330 requests/s when every
connection landed on one process against 2,400 when they split.

So each process writes in a table the master shares with them all (an anonymous shared mapping, inherited by every
fork) how many connections it holds, and leaves the next connection to the others while it holds more than one
more than the least loaded of them. A process that has not written its row for a second (hung) is not waited for,
nor is one that does not accept (stopping, or at its connection limit: it writes infinity), nor one that has ended
(the master writes infinity in its row as it learns of the end).

SO_REUSEPORT, a listening socket per process, was the other way; but the kernel then hashes each connection to a
socket whatever its process holds, so a process at its connection limit or stopping still gets its share, and the
connections waiting in a socket closed on a graceful stop are reset.
"""

from __future__ import annotations

import math
import mmap
import time
from collections.abc import Collection

SLACK = 1  # connections a process may hold beyond the least loaded other before it leaves the next one to it
# The event loop of a process in the table wakes at least this often, to write its row even when idle...
HEARTBEAT_SECONDS = 0.25
STALE_SECONDS = 4 * HEARTBEAT_SECONDS  # ...so a row not written for this long is a process not to wait for.
# While leaving connections to another process, the loop wakes this often to look again: the other may get ahead
# meanwhile, and a process that does not watch the listening socket learns of nothing.
RECHECK_SECONDS = 0.05
_FIELDS = 2  # load, written at (time.monotonic: one clock for every process on the host)


class ConnectionTable:
    """``rows`` rows of (connections held, when written), shared by the processes forked after it is made."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self._memory = mmap.mmap(-1, rows * _FIELDS * 8)
        self._cells = memoryview(self._memory).cast("d")
        for row in range(rows):
            self._cells[row * _FIELDS] = math.inf

    def vacate(self, row: int) -> None:
        """The process holding ``row`` has ended: no process waits for it from now on."""
        self._cells[row * _FIELDS] = math.inf

    def free_row(self, taken: Collection[int]) -> int | None:
        """A row no live process holds (the master keeps account), or None: that process then goes unbalanced."""
        return next((row for row in range(self.rows) if row not in taken), None)

    def of(self, row: int) -> ProcessRow:
        return ProcessRow(self._cells, row, self.rows)


class ProcessRow:
    """One process's row, and the decision it makes from the others'."""

    def __init__(self, cells: memoryview, row: int, rows: int) -> None:
        self._cells, self._at = cells, row * _FIELDS
        self._others = [other * _FIELDS for other in range(rows) if other != row]
        self.write(0)

    def write(self, load: float) -> None:
        """``load``: connections held, or ``math.inf`` while not accepting."""
        self._cells[self._at] = load
        self._cells[self._at + 1] = time.monotonic()

    def may_accept(self, held: int) -> bool:
        """Write ``held`` and say whether this process should take the next connection."""
        self.write(held)
        cells, fresh = self._cells, time.monotonic() - STALE_SECONDS
        least = min((cells[at] for at in self._others if cells[at + 1] >= fresh), default=math.inf)
        return held <= least + SLACK
