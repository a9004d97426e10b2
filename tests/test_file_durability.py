"""The file backend reports a message accepted only once the file and the directory entry naming it are on
disk, and clears away the temporary files a crash left behind.

A power loss cannot be staged in a test, so the test watches the calls that make the write durable: every
``os.fsync`` really runs, and is recorded with what it synced and whether the message had been renamed into
place by then.
"""

from __future__ import annotations

import os
import stat
import time

from api_helpers import HELLO

from mail_gateway import create_app
from mail_gateway.backends.registry import create_backend


def test_the_file_and_its_directory_are_fsynced_before_the_message_is_accepted(make_settings, tmp_path,
                                                                                monkeypatch) -> None:
    directory = tmp_path / "spool"
    synced: list[tuple[str, bool]] = []  # (what: file or directory, was the .eml in place yet)
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        real_fsync(descriptor)
        kind = "directory" if stat.S_ISDIR(os.fstat(descriptor).st_mode) else "file"
        synced.append((kind, any(directory.glob("*.eml"))))

    monkeypatch.setattr(os, "fsync", recording_fsync)
    app = create_app(make_settings(mail_backend="file", mail_file_path=directory))
    response = app.test_client().post("/v1/messages", json=HELLO)
    assert response.status_code == 202
    # The message's bytes first, then — after the rename — the directory, and only then the 202.
    assert synced == [("file", False), ("directory", True)]


def test_stale_temporary_files_are_removed_at_start_and_fresh_ones_kept(make_settings, tmp_path) -> None:
    directory = tmp_path / "spool"
    directory.mkdir()
    stale = directory / ".00000000000000000001-deadbeef0000.eml.tmp"
    fresh = directory / ".00000000000000000002-deadbeef0001.eml.tmp"  # another process may be writing it now
    kept = directory / "00000000000000000003-deadbeef0002.eml"
    for path in (stale, fresh, kept):
        path.write_bytes(b"Subject: half a message")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    backend = create_backend(make_settings(mail_backend="file", mail_file_path=directory))
    assert not stale.exists() and fresh.exists() and kept.exists()
    os.utime(fresh, (an_hour_ago, an_hour_ago))
    backend.check()  # readiness checks clear them too, for a gateway that runs for months
    assert not fresh.exists() and kept.exists()
    assert [m.id for m in backend.list_kept()] == ["00000000000000000003-deadbeef0002"]
