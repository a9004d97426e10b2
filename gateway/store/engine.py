"""Open the store's database: the engine, SQLite's durability settings, migrations, and a file that vanished.

SQLite runs in WAL mode (readers never wait for the writer) with ``synchronous=FULL``: a commit is on disk, not
only in the operating system's cache, before the client hears 202. Every wait for a lock is bounded
(``busy_timeout``), so a store that another process holds locked answers "unavailable" within about a second
instead of holding a request thread. Writes take the lock up front (``BEGIN IMMEDIATE``), so two processes never
deadlock upgrading a read to a write.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection

log = logging.getLogger("mail_gateway.store")
MIGRATIONS = Path(__file__).with_name("migrations")
WAIT_SECONDS = 1.0  # the longest any store operation waits for a lock
WRITE = "mail_gateway_write"  # the execution option that makes a transaction BEGIN IMMEDIATE
MIGRATION_WAIT_SECONDS = 30.0  # another process may be applying the same migrations at start-up
# Alembic keeps the running migration's context in a module global: one migration at a time per process.
_migrating = threading.Lock()


def build_engine(url: str, *, pool_size: int = 8) -> Engine:
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2, pool_timeout=WAIT_SECONDS,
                           connect_args={"timeout": WAIT_SECONDS, "check_same_thread": False})
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling would start transactions late and never IMMEDIATE; SQLAlchemy's
    # documented recipe turns it off and emits BEGIN itself (``_sqlite_begin``).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")


def set_lock_wait(conn: Connection, seconds: float) -> None:
    """Bound the next lock wait of ``conn`` (SQLite; a server database bounds it with its own timeouts)."""
    if conn.dialect.name == "sqlite":
        conn.connection.driver_connection.execute(f"PRAGMA busy_timeout={max(int(seconds * 1000), 10)}")


def upgrade(engine: Engine) -> None:
    """Apply every migration not yet applied (Alembic), in one transaction."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _migrating, engine.connect().execution_options(**{WRITE: True}) as conn:
        set_lock_wait(conn, MIGRATION_WAIT_SECONDS)
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        conn.commit()
        set_lock_wait(conn, WAIT_SECONDS)


class FileWatch:
    """Notices when an SQLite store's file was deleted or replaced under the running gateway.

    Connections opened before would go on reading and writing the deleted file, where every write is lost at the
    next restart (a key used since would send its message again). So each operation compares the file's identity
    with the one it opened; on a change the pool is emptied and the store recreated with its schema.
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
