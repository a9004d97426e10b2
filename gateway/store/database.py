"""``Store``: the engine, the group-commit writer and the checks around them, opened on first use.

SQLAlchemy and Alembic (the queue extra) are loaded on that first use too: an app that never stores anything
(direct delivery on the default SQLite file) installs without them; ``available`` says whether they are there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mail_gateway.errors import ConfigurationError, StoreSchemaError, StoreUnavailableError
from mail_gateway.extras import installed, needs_extra
from mail_gateway.lifecycle import keep_inherited, reset_after_fork
from mail_gateway.settings.store_url import STORE_URL_FIX, hide_secret, parse_store_url
from mail_gateway.store.filewatch import FileWatch

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from mail_gateway.store.notify import Listener
    from mail_gateway.store.writer import Writer

log = logging.getLogger("mail_gateway.store")
T = TypeVar("T")
SQLITE_PREFIX = "sqlite:///"


class Store:
    def __init__(self, url: str, *, pool_size: int = 8, clock: Callable[[], float] = time.time) -> None:
        """Checks what can be checked without touching the disk; ``open()`` (or the first use) creates the
        database and applies the migrations (SQLite), or checks the schema is current (a shared server)."""
        try:
            url = parse_store_url(url).get_secret_value()
        except ValueError as exc:
            raise ConfigurationError(f"GATEWAY_STORE_URL: {exc}; {STORE_URL_FIX}",
                                     variable="GATEWAY_STORE_URL") from exc
        self._url = url
        self.clock = clock
        self.path = url.removeprefix(SQLITE_PREFIX) if url.startswith(SQLITE_PREFIX) else None
        self.shared = self.path is None
        if self.path is not None and not Path(self.path).resolve().parent.is_dir():
            raise ConfigurationError(
                f"GATEWAY_STORE_URL: the directory of {self.path!r} does not exist; set it to sqlite:///<path> in an "
                "existing, writable directory", variable="GATEWAY_STORE_URL")
        self.available = installed("queue")
        self._secrets: tuple[str, ...] = ()
        if self.shared:  # a server needs SQLAlchemy and psycopg from the start, not at the first connection
            with needs_extra("a PostgreSQL GATEWAY_STORE_URL", variable="GATEWAY_STORE_URL"):
                from mail_gateway.store.engine import server_secrets
                self._secrets = server_secrets(url)
        self._pool_size, self._engine, self._migrated = pool_size, None, False
        self._watch = FileWatch(self.path)
        # Counts the files this store has had: one recreated while running is a new generation, which never held
        # the messages claimed from the old one (their outcomes are not recorded in it).
        self.generation = 0
        self._lock = threading.RLock()
        self._writer: Writer | None = None
        self._closers: list[Callable[[], object]] = []
        reset_after_fork(self)

    def __repr__(self) -> str:
        return f"<Store {self.describe()}>"

    def forked(self) -> None:  # in a forked child (lifecycle): its own engine and writer, made at first use
        keep_inherited(self._engine, self._writer)  # the parent's connections, and a writer without its thread
        self._engine, self._writer, self._lock = None, None, threading.RLock()

    @property
    def opened(self) -> bool:
        return self._migrated

    @property
    def engine(self) -> Any:
        """The SQLAlchemy engine (built on first use)."""
        with self._lock:
            if self._engine is None:
                from mail_gateway.store.engine import build_engine
                self._engine = build_engine(self._url, pool_size=self._pool_size)
            return self._engine

    @property
    def writer(self) -> Writer:
        """The group-commit writer (built on first use; the lock only then, as a migration may hold it long)."""
        if self._writer is None:
            with self._lock:
                if self._writer is None:
                    from mail_gateway.store.writer import Writer

                    self._writer = Writer(self._connect, prepare=self._ensure, reset=self._empty_pool,
                                          describe=self.error_text)
        return self._writer

    def open(self) -> Store:
        """Create or upgrade the schema (SQLite), or check it is current (a server): else ``StoreUnavailableError``
        (``StoreSchemaError`` for a schema to upgrade)."""
        self._ensure()
        return self

    def _connect(self) -> Connection:
        return self.engine.connect()

    def _empty_pool(self) -> None:
        """Close the pooled connections, opened as things were when the writer's became unusable."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()

    def _ensure(self) -> None:
        if self._migrated and not self._watch.changed():
            return
        with self._lock:
            if not self._migrated:
                self._migrate()
            elif self._watch.changed():
                self._recreate()

    def _migrate(self) -> None:
        from sqlalchemy.exc import SQLAlchemyError

        from mail_gateway.store.compact import ensure_page_map
        from mail_gateway.store.engine import upgrade, verify_schema
        try:
            (verify_schema if self.shared else upgrade)(self.engine)
            if not self.shared:
                ensure_page_map(self.engine)
        except StoreSchemaError:
            raise
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailableError(f"the store cannot be opened or upgraded: {self.error_text(exc)}") from exc
        self._watch.remember()
        self._migrated = True

    def upgrade(self) -> tuple[str | None, str | None]:
        """Apply the migrations this version has (``mail-gateway db upgrade``): the revisions before and after."""
        from sqlalchemy.exc import SQLAlchemyError

        from mail_gateway.store.engine import current_revision, head_revision, upgrade
        try:
            before = current_revision(self.engine)
            upgrade(self.engine)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailableError(f"the store could not be upgraded: {self.error_text(exc)}") from exc
        return before, head_revision()

    def _recreate(self) -> None:
        log.critical("STORE FILE %s DISAPPEARED OR WAS REPLACED while the gateway ran: recreating it with an empty "
                     "schema. Queued messages, statuses and idempotency keys it held are lost; keys used from now on "
                     "are kept in the new file.", self.path)
        self.writer.drop_connection()  # connections to the old file would go on writing where nothing is kept
        self._engine.dispose()
        self._migrated = False
        self.generation += 1
        self._migrate()

    def write(self, work: Callable[[Connection], T], *, wait: bool = True) -> T:
        """``work(conn)`` in a committed transaction, grouped with others (``Writer``)."""
        return self.writer.write(work, wait=wait)

    def read(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` on a consistent snapshot; raises ``StoreUnavailableError`` when the store fails."""
        from sqlalchemy.exc import SQLAlchemyError

        from mail_gateway.store.faults import read_failure
        self._ensure()
        try:
            with self._connect() as conn, conn.begin():
                return work(conn)
        except (SQLAlchemyError, OSError) as exc:
            raise read_failure(exc, self.error_text(exc)) from exc

    def check(self) -> None:
        """Readiness: the store takes a write that changes no row within its bound (a read alone would pass while
        another process holds the write lock; an empty transaction, on a connection opened read-only). A vanished
        file is recreated first; a full disk shows as a write that failed for want of room lately."""
        from sqlalchemy import delete, false

        from mail_gateway.store.schema import messages
        self.write(lambda conn: conn.execute(delete(messages).where(false())))
        full = self.writer.room.full()
        if full is not None:
            raise StoreUnavailableError(f"the store has no room: a write failed for want of it ({full})")

    def listen(self, wakeup: threading.Event) -> Listener | None:
        """A started ``Listener`` setting ``wakeup`` when another process makes work due; None on SQLite."""
        if not self.shared:
            return None
        from mail_gateway.store.notify import listen
        return listen(self.engine, wakeup, self.error_text)

    def on_close(self, closer: Callable[[], object]) -> None:
        """Have ``close`` call ``closer`` first (a keyring's lease renewer, which writes, stops with the store)."""
        self._closers.append(closer)

    def close(self) -> None:
        for closer in self._closers:
            closer()
        if self._writer is not None:
            self._writer.stop()
        if self._engine is not None:
            self._engine.dispose()

    def describe(self) -> str:
        """Where the store is, for logs and errors: the file, or the server URL without its password."""
        if self.path is not None:
            return self.path
        from mail_gateway.store.engine import shown_url
        return shown_url(self._url)

    def error_text(self, exc: BaseException) -> str:
        """What went wrong, on one line, for logs and problem details: the driver's own message (not
        SQLAlchemy's wrapping with its statement), with the password blanked should a driver ever quote it."""
        cause = getattr(exc, "orig", None) or exc
        text = " ".join(str(cause).split()) or type(cause).__name__
        text = hide_secret(text, *self._secrets)
        return f"{type(cause).__name__}: {text}"[:500]
