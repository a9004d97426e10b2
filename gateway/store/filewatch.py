"""Notice when an SQLite store's file was deleted or replaced under the running gateway."""

from __future__ import annotations

import os


class FileWatch:
    """Connections opened before would go on reading and writing the deleted file, where every write is lost at
    the next restart (a key used since would send its message again). So each operation compares the file's
    identity with the one it opened; on a change the pool is emptied and the store recreated with its schema.
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.identity: tuple[int, int] | None = None

    def current(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        return stat.st_dev, stat.st_ino

    def changed(self) -> bool:
        """The file opened before is gone or another one (never true before the first ``remember``)."""
        return self.identity is not None and self.current() != self.identity

    def remember(self) -> None:
        self.identity = self.current()
