"""``Store``: the engine, the group-commit writer and the checks around them, opened on first use."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from mail_gateway.errors import ConfigurationError, StoreUnavailableError
from mail_gateway.store.engine import FileWatch, build_engine, upgrade
from mail_gateway.store.schema import messages
from mail_gateway.store.writer import Writer

log = logging.getLogger("mail_gateway.store")
T = TypeVar("T")
SQLITE_PREFIX = "sqlite:///"


class Store:
    def __init__(self, url: str, *, pool_size: int = 8, clock: Callable[[], float] = time.time) -> None:
        """Checks what can be checked without touching the disk; ``open()`` (or the first use) creates the
        database and applies the migrations."""
        self.url = url
        self.clock = clock
        self.path = url.removeprefix(SQLITE_PREFIX) if url.startswith(SQLITE_PREFIX) else None
        if self.path is not None and not Path(self.path).resolve().parent.is_dir():
            raise ConfigurationError(
                f"GATEWAY_STORE_URL: the directory of {self.path!r} does not exist; set it to sqlite:///<path> in an "
                "existing, writable directory", variable="GATEWAY_STORE_URL")
        self._pool_size = pool_size
        self._engine: Any = None
        self._migrated = False
        self._watch = FileWatch(self.path)
        self._lock = threading.RLock()
        self.writer = Writer(self._connect, prepare=self._ensure)

    @property
    def opened(self) -> bool:
        return self._migrated

    def open(self) -> Store:
        """Create the database if needed and bring its schema up to date; raises ``StoreUnavailableError``."""
        self._ensure()
        return self

    def _connect(self) -> Connection:
        return self._engine.connect()

    def _ensure(self) -> None:
        if self._migrated and not self._watch.changed():
            return
        with self._lock:
            if self._engine is None:
                self._engine = build_engine(self.url, pool_size=self._pool_size)
            if not self._migrated:
                self._migrate()
            elif self._watch.changed():
                self._recreate()

    def _migrate(self) -> None:
        try:
            upgrade(self._engine)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailableError(f"the store cannot be opened or upgraded: {exc}") from exc
        self._watch.remember()
        self._migrated = True

    def _recreate(self) -> None:
        log.critical("STORE FILE %s DISAPPEARED OR WAS REPLACED while the gateway ran: recreating it with an empty "
                     "schema. Queued messages, statuses and idempotency keys it held are lost; keys used from now on "
                     "are kept in the new file.", self.path)
        self._engine.dispose()  # connections to the old file would go on writing where nothing is kept
        self._migrate()

    def write(self, work: Callable[[Connection], T], *, wait: bool = True) -> T:
        """``work(conn)`` in a committed transaction, grouped with others (``Writer``)."""
        return self.writer.write(work, wait=wait)

    def read(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` on a consistent snapshot; raises ``StoreUnavailableError`` when the store fails."""
        self._ensure()
        try:
            with self._connect() as conn, conn.begin():
                return work(conn)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailableError(f"the store could not be read: {type(exc).__name__}") from exc

    def check(self) -> None:
        """Readiness: the store takes a write transaction (an empty one: nothing reaches the disk) within its
        bound. A read alone would pass while another process holds the write lock. A vanished file is
        recreated first."""
        self.write(lambda conn: conn.execute(select(messages.c.id).limit(1)).all())

    def close(self) -> None:
        self.writer.stop()
        if self._engine is not None:
            self._engine.dispose()

    def describe(self) -> str:
        """Where the store is, for logs and errors: the file, or the server URL without its password."""
        if self.path is not None:
            return self.path
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)
