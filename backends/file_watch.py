"""What other processes do to a shared ``MAIL_FILE_PATH``, for the outbox's change feed.

Several processes may keep mail in one directory: ``serve --workers N``, a ``worker`` or ``smtpd`` beside
``serve``, an application's own process writing with the file backend while the gateway shows the outbox. A
process's feed hears of its own writes at once; another's are found by looking at the directory while someone
waits on the feed, at most once each ``LOOK_SECONDS``: its modification time, and when that moved, a listing
compared with the last one. Polling by hand, because the standard library has no portable way to be told of a
directory's changes (inotify is Linux's alone), and one stat a second while a page is open costs nothing a person
would notice.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOOK_SECONDS = 1.0
SETTLED_NS = 2_000_000_000  # FAT's clock ticks every 2 s; most others' in nanoseconds or milliseconds


@dataclass(frozen=True, slots=True)
class Listing:
    ids: frozenset[str]  # the messages' ids (their file names without ".eml")
    read: frozenset[str]  # the ids with a read mark (".<id>.read")


def listing(directory: Path, is_id: Callable[[str], bool]) -> Listing | None:
    """The directory's messages and read marks, or None when it cannot be listed right now."""
    try:
        names = os.listdir(directory)
    except OSError:
        return None
    ids = frozenset(name[:-4] for name in names if name.endswith(".eml") and is_id(name[:-4]))
    marks = frozenset(name[1:-5] for name in names if name.startswith(".") and name.endswith(".read"))
    return Listing(ids, marks & ids)


def differences(before: Listing, after: Listing) -> list[tuple[str, dict[str, Any]]]:
    """The changes from ``before`` to ``after``, as the feed's kinds and data."""
    changes: list[tuple[str, dict[str, Any]]] = [("message", {"id": i}) for i in sorted(after.ids - before.ids)]
    gone = sorted(before.ids - after.ids)
    if gone:
        changes.append(("deleted", {"ids": gone}))
    changes += [("read", {"id": i, "read": True}) for i in sorted(after.read - before.read)]
    changes += [("read", {"id": i, "read": False}) for i in sorted((before.read - after.read) & after.ids)]
    return changes


class DirectoryWatch:
    """The directory as last listed, and what changed in it since, less what this process announced itself."""

    def __init__(self, directory: Path, is_id: Callable[[str], bool]) -> None:
        self.directory, self.is_id = directory, is_id
        self.clock = time.monotonic
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None  # (the directory's mtime, the wall clock) at the last listing
        # Listed at once, so that what another process writes from now on is found, however late the first look.
        self._last = self._list() or Listing(frozenset(), frozenset())
        self._next_look = self.clock() + LOOK_SECONDS

    def _unchanged(self) -> bool:
        """Whether the directory cannot have changed since the last listing: its modification time is the same,
        and that listing came more than ``SETTLED_NS`` after it, so no later change can share its time (a file
        system's clock may tick that coarsely). One stat instead of a listing, which costs milliseconds for
        thousands of messages."""
        try:
            mtime = os.stat(self.directory).st_mtime_ns
        except OSError:
            return False
        return self._stamp is not None and mtime == self._stamp[0] and self._stamp[1] - mtime > SETTLED_NS

    def _list(self) -> Listing | None:
        try:
            stamp = (os.stat(self.directory).st_mtime_ns, time.time_ns())
        except OSError:
            return None
        found = listing(self.directory, self.is_id)
        self._stamp = stamp if found is not None else None
        return found

    def others(self) -> list[tuple[str, dict[str, Any]]]:
        """The changes found since the last look, at most one look each ``LOOK_SECONDS``; [] between looks."""
        with self._lock:
            now = self.clock()
            if now < self._next_look:
                return []
            self._next_look = now + LOOK_SECONDS
            found = None if self._unchanged() else self._list()
            if found is None:
                return []
            before, self._last = self._last, found
        return differences(before, found)

    def note(self, kind: str, data: dict[str, Any]) -> None:
        """Take a change this process made, and announces itself, into the last listing. A look between its
        write and its announcement announces it too: twice is harmless (a page reads its list again, a wait
        looks again), where keeping it quiet could lose the owner a named key's stream needs."""
        with self._lock:
            last = self._last
            if kind == "message":
                self._last = Listing(last.ids | {data["id"]}, last.read)
            elif kind == "deleted":
                gone = frozenset(data["ids"])
                self._last = Listing(last.ids - gone, last.read - gone)
            elif kind == "read":
                read = last.read | {data["id"]} if data["read"] else last.read - {data["id"]}
                self._last = Listing(last.ids, read)
            elif kind == "cleared":
                self._last = Listing(frozenset(), frozenset())
