"""The file backend's read marks: an empty file ``.<id>.read`` beside each message read, so that every process
sharing ``MAIL_FILE_PATH`` sees the same marks, and a restart keeps them, as the messages themselves are kept.

The marks sit in the messages' own directory, not in one of their own: creating or removing one changes the
directory, which is what the file backend's ``version()`` (the outbox list's ETag) looks at, so a page served by
another process sees a mark made here. Owners and delivery results still live in the process that kept the
message (``KeptState``). The change feed hears of the messages and marks other processes make too, by looking at
the directory while someone waits on it (``file_watch``).
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import Any

from mail_gateway.backends.file_watch import LOOK_SECONDS, DirectoryWatch
from mail_gateway.backends.keeping import Change, KeptState
from mail_gateway.errors import StoreUnavailableError

# A kept message's id is its file name without ".eml". Starting with a letter or digit and never holding a
# slash, an id cannot name a dot-file (a temporary still being written, a read mark) or anything outside the
# directory. At most 249 characters: its read mark, ".<id>.read", must still be a file name (255 at most), and a
# longer id asked for is no message rather than an OSError.
MESSAGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,248}")
_MARKS = ".*.read"


class FileReadMarks(KeptState):
    """``KeptState`` whose read marks are files in ``directory`` (see the module's docstring)."""

    def __init__(self, directory: Path, max_age: float | None) -> None:
        super().__init__(None, max_age)
        self.directory = directory
        self.watch = DirectoryWatch(directory, lambda name: MESSAGE_ID.fullmatch(name) is not None)

    def _mark(self, message_id: str) -> Path | None:
        return self.directory / f".{message_id}.read" if MESSAGE_ID.fullmatch(message_id) else None

    def is_read(self, message_id: str) -> bool:
        mark = self._mark(message_id)
        return mark is not None and mark.exists()

    def mark_read(self, message_id: str, read: bool) -> bool:
        mark = self._mark(message_id)
        if mark is None:
            return False
        try:
            if read:
                mark.touch()
            else:
                mark.unlink(missing_ok=True)
        except OSError as exc:
            raise StoreUnavailableError(f"the read mark of {message_id} could not be written in MAIL_FILE_PATH "
                                        f"({exc.strerror or exc}); make the directory writable") from exc
        # Looked at after the mark is made: a delete (any process's) removes the message, then its mark, so one of
        # the two always sees the other's work and no mark outlives its message.
        if not (self.directory / f"{message_id}.eml").is_file():
            with contextlib.suppress(OSError):
                mark.unlink(missing_ok=True)
            return False
        self.publish("read", {"id": message_id, "read": read})
        return True

    def forget(self, message_id: str | None = None, *, dropped: bool = False) -> None:
        super().forget(message_id, dropped=dropped)
        marks = self.directory.glob(_MARKS) if message_id is None else [self._mark(message_id)]
        for mark in marks:
            if mark is not None:
                with contextlib.suppress(OSError):  # gone meanwhile: another process forgot it first
                    mark.unlink(missing_ok=True)

    # The change feed hears of other processes' files too (backends/file_watch.py).

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        self.watch.note(kind, data)
        super().publish(kind, data)

    def changes_after(self, sequence: int, timeout: float) -> list[Change]:
        # Another process's file wakes no one here: the wait is cut into looks at the directory.
        deadline = time.monotonic() + timeout
        while True:
            for kind, data in self.watch.others():
                super().publish(kind, data)
            left = deadline - time.monotonic()
            found = super().changes_after(sequence, min(left, LOOK_SECONDS))
            if found or left <= LOOK_SECONDS:
                return found
