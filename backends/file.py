"""Write each message as one ``.eml`` file in ``MAIL_FILE_PATH``, durably.

A message is reported accepted only once it would survive a power loss: its temporary file is written and
fsynced, renamed into place, and the directory fsynced too (the rename lives in the directory's own data).
Temporary files that a crash left behind are removed when the backend starts and whenever readiness is checked,
once they are older than any write in progress could be. With ``GATEWAY_OUTBOX_MAX_AGE`` set, messages older than
that are deleted when the outbox is listed (a name begins with its arrival time).

Read marks are files beside the messages (``FileReadMarks``): every process sharing the directory sees them, and
they outlast a restart. Owners and delivery results live in this process: another process, or a restart, sees
its messages without owner (which named API keys do not see).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from mail_gateway.backends.base import EmailBackend
from mail_gateway.backends.file_marks import MESSAGE_ID, FileReadMarks
from mail_gateway.backends.kept import KeptMessage, KeptSummary, SummaryCache, index_of
from mail_gateway.backends.search_index import KeptIndex
from mail_gateway.errors import ConfigurationError, TransientDeliveryError
from mail_gateway.mail.rendering import RenderedMessage
from mail_gateway.mail.result import SendResult, all_accepted

if TYPE_CHECKING:
    from mail_gateway.settings.local import FileBackendSettings

_TEMPORARY = ".*.eml.tmp"
# A temporary file untouched this long belongs to no write in progress (several processes may share the
# directory, so a fresh one may be another process's message being written right now).
STALE_TEMPORARY_SECONDS = 300.0


def sync_directory(path: Path) -> None:
    """fsync a directory, so the names created or renamed in it survive a crash."""
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_stale_temporaries(directory: Path, older_than: float = STALE_TEMPORARY_SECONDS) -> int:
    """Delete the temporary files a crash left in ``directory``; return how many."""
    removed = 0
    deadline = time.time() - older_than
    for path in directory.glob(_TEMPORARY):
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to remove
            if path.is_file() and path.stat().st_mtime < deadline:
                path.unlink()
                removed += 1
    return removed


def writable_directory(path: Path) -> Path:
    """Create ``path`` if needed and prove it writable, or raise ``ConfigurationError``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        # os.access() says yes to root for any directory; only a real write proves it.
        probe = path / f".probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigurationError(
            f"MAIL_FILE_PATH={str(path)!r} is not a writable directory ({exc.strerror or exc}); "
            "set MAIL_FILE_PATH to a directory the gateway can write",
            variable="MAIL_FILE_PATH",
        ) from exc
    return path


class FileBackend(EmailBackend):
    name = "file"
    settings: FileBackendSettings

    def __init__(self, settings: FileBackendSettings) -> None:
        super().__init__(settings)
        self.directory = writable_directory(settings.mail_file_path)
        # Files are written once and never changed, so a summary stays true for as long as its file exists.
        self._summaries: SummaryCache[KeptSummary] = SummaryCache()
        self._indexes: SummaryCache[KeptIndex] = SummaryCache(make=index_of)
        self._changes = 0
        self.keeping = FileReadMarks(self.directory, settings.max_age)
        remove_stale_temporaries(self.directory)

    def check(self) -> None:
        # Checked at start-up too, but a disk can fill up or be remounted read-only while the gateway runs; a
        # 0-byte probe still fits on a full disk, so the free space is compared with the largest message.
        writable_directory(self.directory)
        remove_stale_temporaries(self.directory)  # first: what it frees counts below
        largest, variable = self.settings.largest_message_bytes, self.settings.largest_message_setting
        free = shutil.disk_usage(self.directory).free
        if free < largest:
            raise TransientDeliveryError(
                f"MAIL_FILE_PATH has {free} bytes free, less than the largest message the gateway accepts "
                f"({largest} bytes, {variable}); free some space", backend=self.name)

    def deliver(self, message: RenderedMessage) -> SendResult:
        # Nanosecond time first so names sort by arrival; the random suffix keeps concurrent writers apart.
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.eml"
        final = self.directory / name
        temporary = self.directory / f".{name}.tmp"
        try:
            with open(temporary, "xb") as handle:
                handle.write(message.data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, final)  # atomic: a reader sees the whole message or none of it
            sync_directory(self.directory)  # the rename itself, before the message is reported accepted
            self._changes += 1
            self.keeping.kept(name[:-4], {"backend": self.name, "accepted": list(message.recipients)})
            self.keeping.publish("message", {"id": name[:-4]})
        except OSError as exc:
            # Not known to be durable, so not reported accepted: nor kept, or a retry would duplicate it.
            for path in (temporary, final):
                with contextlib.suppress(OSError):  # the directory itself may be what failed
                    path.unlink(missing_ok=True)
            raise TransientDeliveryError(
                f"could not write {final.name}: {exc.strerror or exc}",
                backend=self.name,
                message_id=message.message_id,
            ) from exc
        return all_accepted(message.message_id, self.name, message.recipients)

    # The ``KeptMail`` reading interface (backends/kept.py): the directory is what the backend kept.

    def _path(self, message_id: str) -> Path | None:
        return self.directory / f"{message_id}.eml" if MESSAGE_ID.fullmatch(message_id) else None

    def kept_ids(self) -> list[str]:
        # Names begin with the arrival time, so reverse name order is newest first. Only names are listed here:
        # no file is opened until a page needs its summary.
        try:
            names = [entry.name[:-4] for entry in os.scandir(self.directory) if entry.name.endswith(".eml")]
        except OSError:
            return []
        found = sorted((name for name in names if MESSAGE_ID.fullmatch(name)), reverse=True)
        return self._within_age(found) if self.keeping.max_age is not None else found

    def _within_age(self, ids: list[str]) -> list[str]:
        """``ids`` (newest first) without the messages older than GATEWAY_OUTBOX_MAX_AGE, which are deleted."""
        now, kept = self.keeping.clock(), []
        for message_id in ids:
            arrived = message_id.partition("-")[0]
            if arrived.isdigit() and self.keeping.too_old(int(arrived) / 1e9, now):
                path = self._path(message_id)
                if path is not None:
                    path.unlink(missing_ok=True)
                self._summaries.forget(message_id)
                self._indexes.forget(message_id)
                self.keeping.forget(message_id, dropped=True)
                self._changes += 1
            else:
                kept.append(message_id)
        return kept

    def list_kept(self) -> list[KeptMessage]:
        kept = (self.get_kept(message_id) for message_id in self.kept_ids())
        return [message for message in kept if message is not None]

    def summary(self, message_id: str) -> KeptSummary | None:
        return self._summaries.get(message_id, self.get_kept)

    def search_index(self, message_id: str) -> KeptIndex | None:
        return self._indexes.get(message_id, self.get_kept)

    def version(self) -> str:
        # Another process may add or remove files too: the directory's own change time and size of listing
        # catch those, this process's count catches two changes within one tick of the file system's clock.
        try:
            stat = os.stat(self.directory)
            entries = len(os.listdir(self.directory))
        except OSError:
            return "file-missing"
        return f"file-{stat.st_mtime_ns}-{entries}-{self._changes}"

    def get_kept(self, message_id: str) -> KeptMessage | None:
        path = self._path(message_id)
        if path is None:
            return None
        try:
            return KeptMessage(message_id, path.read_bytes())
        except (FileNotFoundError, IsADirectoryError):  # deleted meanwhile, or not a message at all
            return None

    def delete_kept(self, message_id: str) -> bool:
        path = self._path(message_id)
        if path is None or not path.is_file():
            return False
        try:
            path.unlink()
        except FileNotFoundError:  # another request deleted it first
            return False
        finally:
            self._summaries.forget(message_id)
            self._indexes.forget(message_id)
            self.keeping.forget(message_id)
            self._changes += 1
        self.keeping.publish("deleted", {"ids": [message_id]})
        return True

    def clear(self) -> None:
        for path in self.directory.glob("*.eml"):
            if MESSAGE_ID.fullmatch(path.stem) and path.is_file():
                path.unlink(missing_ok=True)
        self._summaries.forget()
        self._indexes.forget()
        self.keeping.forget()
        self._changes += 1
        self.keeping.publish("cleared", {})
