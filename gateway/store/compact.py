"""Give the space of deleted bodies back to the file system (SQLite).

A message's body is deleted once none of its recipients is pending (``claims.sum_up``, ``recording.record_all``),
but SQLite keeps the pages it took as free pages of its file, and the write-ahead log keeps the size of the largest
transaction it ever held: four 30 MB messages left 240 MB on the disk for good. So a store is created with
``auto_vacuum=INCREMENTAL`` (``engine``), which lets free pages be cut off the file, and the delivery workers
(``Compactor``), every ``GATEWAY_STORE_COMPACT_INTERVAL`` seconds, free them a few megabytes per change of the
writer (never a long hold of the write lock that requests would wait for), then checkpoint the log and truncate
it. A store file made before that setting gets it once, when opened (``VACUUM`` rewrites the file).

PostgreSQL needs none of this: its autovacuum reuses the space of deleted rows.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from mail_gateway.errors import StoreUnavailableError
from mail_gateway.store.engine import MIGRATION_WAIT_SECONDS, WAIT_SECONDS

if TYPE_CHECKING:
    from mail_gateway.store.database import Store

log = logging.getLogger("mail_gateway.store")
INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL
STEP_PAGES = 1024  # freed per change: 4 MiB at the default page size, some tens of milliseconds
CHECKPOINT_WAIT = 0.1  # seconds the checkpoint waits for other connections; else it is tried next time


def _driver(conn: Connection) -> Any:
    return conn.connection.driver_connection


def _set_wait(driver: Any, seconds: float) -> None:
    driver.execute(f"PRAGMA busy_timeout={int(seconds * 1000)}")


def ensure_page_map(engine: Engine) -> None:
    """A store file made before the gateway set ``auto_vacuum=INCREMENTAL`` gets it now, once: the mode of an
    existing file changes only with a ``VACUUM``, which rewrites it. Should another process hold the file that
    long, the store works as before and the next start tries again."""
    with engine.connect() as conn:
        driver = _driver(conn)
        if driver.execute("PRAGMA auto_vacuum").fetchone()[0] == INCREMENTAL:
            return
        log.warning("rewriting the store file once (VACUUM), so that it gives back the space of delivered messages")
        _set_wait(driver, MIGRATION_WAIT_SECONDS)
        try:
            driver.execute("PRAGMA auto_vacuum=INCREMENTAL")
            driver.execute("VACUUM")
        except sqlite3.Error as exc:
            log.warning("could not rewrite the store file (%s: %s); it keeps the space of deleted messages until "
                        "a later start does", type(exc).__name__, exc)
        finally:
            _set_wait(driver, WAIT_SECONDS)


def free_pages(conn: Connection) -> tuple[int, int]:
    """Cut up to ``STEP_PAGES`` free pages off the file, in the writer's transaction: (free pages before, after).
    ``PRAGMA incremental_vacuum(N)`` yields a row per page freed, and the sqlite3 module does not step past the
    first row of a statement without columns: each execution frees one page."""
    driver = _driver(conn)
    before = driver.execute("PRAGMA freelist_count").fetchone()[0]
    for _ in range(min(before, STEP_PAGES)):
        driver.execute("PRAGMA incremental_vacuum(1)")
    return before, driver.execute("PRAGMA freelist_count").fetchone()[0]


def checkpoint(engine: Engine) -> bool:
    """Copy the log into the file and truncate it to nothing; False when other connections kept it from that
    (readers or a writer still busy after ``CHECKPOINT_WAIT``). Outside any transaction, as SQLite requires."""
    with engine.connect() as conn:
        driver = _driver(conn)
        _set_wait(driver, CHECKPOINT_WAIT)
        try:
            busy = driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        finally:
            _set_wait(driver, WAIT_SECONDS)
    return not busy


class Compactor:
    """Free the file's free pages, then truncate its log; the delivery workers run it every
    ``GATEWAY_STORE_COMPACT_INTERVAL`` seconds (a ``Loop``), and ``stopping`` cuts a long run short."""

    def __init__(self, store: Store, stopping: threading.Event) -> None:
        self.store, self.stopping = store, stopping

    def compact(self) -> None:
        try:
            while not self.stopping.is_set():
                before, after = self.store.write(free_pages)
                if after == 0 or after >= before:  # done, or a file without the page map (it frees nothing)
                    break
            if self._log_bytes():
                checkpoint(self.store.engine)
        except (StoreUnavailableError, SQLAlchemyError, sqlite3.Error) as exc:
            log.warning("could not give back the store's free space yet: %s", self.store.error_text(exc))

    def _log_bytes(self) -> int:
        try:
            return Path(f"{self.store.path}-wal").stat().st_size
        except OSError:
            return 0
