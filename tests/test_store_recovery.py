"""A store that cannot be written (read-only, disk full) takes the node out of readiness, and the gateway recovers
by itself once it can be written again: no restart.

SQLite opens a file it cannot open for writing read-only, and that connection stays read-only after the file is
writable again. The file is made unwritable the way an operator's ``chmod`` does; as root, which ignores permission
bits, by making it immutable (``chattr +i``), which root must obey too.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from queue_support import MESSAGE, queued_app

from mail_gateway import MailGateway
from mail_gateway.store.database import Store

Toggle = Callable[[Path, bool], None]


@pytest.fixture
def read_only() -> Iterator[Toggle]:
    """``read_only(path, True)`` makes the file unwritable, ``read_only(path, False)`` writable again; every file
    is made writable again when the test ends (an immutable file could not even be deleted)."""
    made: set[Path] = set()

    def toggle(path: Path, on: bool) -> None:
        if os.geteuid() != 0:
            path.chmod(0o444 if on else 0o644)
        else:
            if shutil.which("chattr") is None:
                pytest.skip("chattr is needed to make a file read-only for root")
            done = subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True, text=True)
            if done.returncode != 0:
                pytest.skip(f"this file system cannot make a file immutable: {done.stderr.strip()}")
        (made.add if on else made.discard)(path)

    yield toggle
    for path in list(made):
        toggle(path, False)


HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("SELECT count(*) FROM messages").fetchall()
print("open", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def other_process() -> Iterator[Callable[[Path], str]]:
    """``other_process(path)`` makes a store and keeps it open in another process, as another gateway process on
    the same store does (so its write-ahead log stays); gives the store's URL."""
    held: list[subprocess.Popen[str]] = []

    def start(path: Path) -> str:
        url = f"sqlite:///{path}"
        Store(url).open().close()
        held.append(subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True))
        assert held[-1].stdout.readline().strip() == "open"
        return url

    yield start
    for holder in held:
        holder.stdin.close()
        holder.wait(10)
        holder.stdout.close()


def test_a_store_that_turns_writable_again_takes_sends_and_deliveries_without_a_restart(
        make_settings, queued_apps, smtp_server, read_only, other_process, tmp_path) -> None:
    """A connection opened while the file was read-only (here: the node starts then) answered SQLITE_READONLY for
    ever: the writer kept it, and the pool kept its like, so every send stayed 503 after the file was writable
    again, until a restart."""
    path = tmp_path / "store.sqlite3"
    url = other_process(path)
    read_only(path, True)
    queued = queued_app(make_settings, gateway_store_url=url, **smtp_server.queued_settings())
    queued_apps.append(queued)
    refused = queued.client.post("/v1/messages", json=MESSAGE)
    assert refused.status_code == 503 and refused.get_json()["type"].endswith("store-unavailable")
    read_only(path, False)
    accepted = queued.send()
    assert queued.wait_status(accepted["id"], "delivered")["status"] == "delivered"  # claimed, delivered and recorded
    assert len(smtp_server.messages) == 1


def test_not_ready_while_the_store_is_read_only(make_settings, queued_apps, read_only, other_process,
                                                tmp_path) -> None:
    """An empty write transaction passes on a read-only connection: /readyz said 200 while no send could be
    stored. Readiness now tries a write (one that changes nothing)."""
    path = tmp_path / "store.sqlite3"
    url = other_process(path)
    read_only(path, True)
    queued = queued_app(make_settings, workers=False, gateway_store_url=url, mail_backend="memory")
    queued_apps.append(queued)
    ready = queued.client.get("/readyz")
    assert ready.status_code == 503 and "store" in ready.get_json()["detail"], ready.get_json()
    read_only(path, False)
    assert queued.client.get("/readyz").status_code == 200
    queued.send()


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 4 MiB file system of its own (tmpfs): filling it fills no one else's disk."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"a small file system needs mount privileges: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def test_not_ready_while_the_disk_is_full_and_ready_once_a_write_succeeds(make_settings, queued_apps,
                                                                          small_disk) -> None:
    """A full disk refuses the writes that need room, but an empty probe passes: /readyz said 200 while every send
    got 503. Readiness now also reports a recent write that failed for want of room."""
    queued = queued_app(make_settings, workers=False, gateway_store_url=f"sqlite:///{small_disk / 'store.sqlite3'}",
                        mail_backend="memory")
    queued_apps.append(queued)
    queued.send()
    filler = _fill(small_disk)
    big = {**MESSAGE, "text": "x" * (1024 * 1024)}  # more than the write-ahead log holds already: it must grow
    refused = queued.client.post("/v1/messages", json=big)
    assert refused.status_code == 503 and refused.get_json()["type"].endswith("store-unavailable")
    ready = queued.client.get("/readyz")
    assert ready.status_code == 503 and "store" in ready.get_json()["detail"], ready.get_json()
    filler.unlink()
    queued.send(big)
    assert queued.client.get("/readyz").status_code == 200
    MailGateway.state(queued.app).store.close()  # nothing left open on the file system unmounted next


def test_a_postgresql_store_that_turned_read_only_is_not_ready_and_recovers(make_settings, queued_apps, postgres,
                                                                            postgres_url) -> None:
    """Sessions opened while the database was read-only (a primary demoted to a standby answers so) stay
    read-only: the writer kept its session, and readiness, reading only, said 200."""
    import psycopg

    queued = queued_app(make_settings, workers=False, gateway_store_url=postgres_url, mail_backend="memory")
    queued_apps.append(queued)
    queued.send()
    database = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres.conninfo(), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
        # The gateway's sessions end, as on a failover; those it opens next are read-only.
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                      "pg_backend_pid()", (database,))
        refused = queued.client.post("/v1/messages", json=MESSAGE)
        ready = queued.client.get("/readyz")
        admin.execute(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
    assert refused.status_code == 503 and refused.get_json()["type"].endswith("store-unavailable")
    assert ready.status_code == 503 and "store" in ready.get_json()["detail"], ready.get_json()
    queued.send()
    assert queued.client.get("/readyz").status_code == 200
