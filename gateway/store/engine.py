"""Open the store's database: the engine, SQLite's durability settings, bounded lock waits, the schema.

SQLite runs in WAL mode (readers never wait for the writer) with ``synchronous=FULL``: a commit is on disk, not
only in the operating system's cache, before the client hears 202. Writes take the lock up front (``BEGIN
IMMEDIATE``), so two processes never deadlock upgrading a read to a write. PostgreSQL (psycopg 3) is durable at
commit by its own defaults; there ``FOR UPDATE SKIP LOCKED`` lets claimers pass over each other's rows.

Every wait for a lock is bounded (SQLite's ``busy_timeout``, PostgreSQL's ``lock_timeout``), so a store that
another process holds locked answers "unavailable" within about a second instead of holding a request thread.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import urllib.parse
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from mail_gateway.errors import StoreSchemaError
from mail_gateway.settings.store_url import POSTGRES_DRIVER
from mail_gateway.store.schema import metadata

log = logging.getLogger("mail_gateway.store")
MIGRATIONS = Path(__file__).with_name("migrations")
WAIT_SECONDS = 1.0  # the longest any store operation waits for a lock
WRITE = "mail_gateway_write"  # the execution option that makes a transaction BEGIN IMMEDIATE
LOCK_WAIT = "mail_gateway_lock_wait"  # the execution option a PostgreSQL transaction takes its lock_timeout from
MIGRATION_WAIT_SECONDS = 30.0  # another process may be applying the same migrations at start-up
# libpq's connection parameters that hold a secret, which a URL may give in its query (?password=...).
SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
CONNECT_SECONDS = 5  # psycopg's connect_timeout: whole seconds, at least 2
# Alembic keeps the running migration's context in a module global: one migration at a time per process.
_migrating = threading.Lock()
# What a store without a revision may hold: the store file of earlier versions had idempotency_keys alone (which
# migration 0001 carries over); an empty alembic_version is Alembic's.
OWN_TABLES = frozenset({*metadata.tables, "alembic_version"})


def postgres_connect_args() -> dict[str, Any]:
    """libpq's connection parameters: a bounded connect, and TCP keep-alives so that a server that vanished
    from the network fails the connection within seconds instead of hanging a thread."""
    return {"connect_timeout": CONNECT_SECONDS, "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
            "keepalives_count": 3, "application_name": "mail-gateway",
            # Every lock wait bounded for the whole session, so no transaction spends a statement on it.
            "options": f"-c lock_timeout={int(WAIT_SECONDS * 1000)}"}


def server_secrets(url: str) -> tuple[str, ...]:
    """The secrets of a server's URL (its password, given before the host or as a parameter), for errors to blank
    them should a driver quote one."""
    import psycopg  # noqa: F401 - the driver SQLAlchemy loads at the first connection: missing, say so now

    parsed = make_url(url)
    given = [parsed.password, *(parsed.query[key] for key in parsed.query if key.lower() in SECRET_PARAMETERS)]
    return tuple(str(value) for value in given if isinstance(value, str) and value)


def shown_url(url: str) -> str:
    """A server's URL for logs and errors: its password and secret parameters masked."""
    parsed = make_url(url)
    query = {key: "***" if key.lower() in SECRET_PARAMETERS else value for key, value in parsed.query.items()}
    shown = parsed.set(query=query).render_as_string(hide_password=True)
    return shown.replace("=%2A%2A%2A", "=***").replace(POSTGRES_DRIVER, "postgresql")


def build_engine(url: str, *, pool_size: int = 8) -> Engine:
    # Bound parameters (addresses, message bytes) stay out of error messages and logs.
    options: dict[str, Any] = {"pool_size": pool_size, "max_overflow": pool_size * 2, "pool_timeout": WAIT_SECONDS,
                               "hide_parameters": True}
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": WAIT_SECONDS, "check_same_thread": False}, **options)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # pre_ping: a pooled connection the server closed (a restart, a failover) is replaced, not handed out.
    engine = create_engine(url, connect_args=postgres_connect_args(), pool_pre_ping=True, **options)
    event.listen(engine, "begin", _postgres_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling would start transactions late and never IMMEDIATE; SQLAlchemy's
    # documented recipe turns it off and emits BEGIN itself (``_sqlite_begin``).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # Before anything creates the file (journal_mode=WAL writes its header): a new store keeps a map of its pages,
    # so that the pages of deleted bodies can be given back to the file system (``mail_gateway.store.compact``).
    # On an existing file it changes nothing. Set only where it is not yet: setting it writes the header even when
    # it is, and a file that cannot be written (a connection opened read-only) would then refuse every connection.
    if cursor.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:  # 2: INCREMENTAL
        cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")


def _postgres_begin(conn: Connection) -> None:
    seconds = conn.get_execution_options().get(LOCK_WAIT)
    if seconds is not None:  # a longer wait than the session's (a migration waiting for another)
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{max(int(seconds * 1000), 10)}ms'")


def set_lock_wait(conn: Connection, seconds: float) -> None:
    """Bound the lock waits of the next transaction of ``conn``. On PostgreSQL every session is bounded to
    ``WAIT_SECONDS`` already; only a longer wait costs a statement."""
    if conn.dialect.name == "sqlite":
        conn.connection.driver_connection.execute(f"PRAGMA busy_timeout={max(int(seconds * 1000), 10)}")
    elif seconds > WAIT_SECONDS:
        conn.execution_options(**{LOCK_WAIT: seconds})


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    refuse_other_unopened(engine)
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _sqlite_file(engine: Engine) -> str | None:
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    return None if not path or path == ":memory:" else path


def refuse_other_unopened(engine: Engine) -> None:
    """``refuse_other`` for an existing SQLite file, looked at read-only before the gateway's connections open it:
    their set-up (write-ahead log, incremental vacuum) writes to the file, which another program's database must
    not get from a refusal. A file this cannot read is left to the check that follows opening it."""
    path = _sqlite_file(engine)
    if path is None or not os.path.isfile(path) or os.path.getsize(path) == 0:
        return
    reader = create_engine("sqlite://", poolclass=NullPool, creator=lambda: sqlite3.connect(
        f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro", uri=True))
    try:
        with reader.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            refuse_other(conn, current)
    except SQLAlchemyError:
        pass
    finally:
        reader.dispose()


def refuse_other(conn: Connection, current: str | None) -> None:
    """Refuse, before any migration touches it, a database that upgrading cannot make this version's store: one at
    a revision none of this version's migrations made (a later release's, or another program's own Alembic), at
    which Alembic stops with a traceback; or one with no revision holding another program's tables, among which
    the migrations would add the gateway's (and an SQLite file's one-time VACUUM renumber their rows)."""
    script = ScriptDirectory.from_config(_config())
    if current is not None and current not in {migration.revision for migration in script.walk_revisions()}:
        raise StoreSchemaError(
            f"the store has schema revision {current}, which this version does not know (its newest is "
            f"{script.get_current_head()}): a later release of mail-gateway upgraded it, or it is another program's "
            "database; run that release or a later one, or set GATEWAY_STORE_URL to the gateway's own store")
    others = [] if current is not None else sorted(set(inspect(conn).get_table_names()) - OWN_TABLES)
    if others:
        named = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise StoreSchemaError(f"the store holds no mail-gateway schema but another program's tables ({named}); set "
                               "GATEWAY_STORE_URL to a database of the gateway's own (a new file, or an empty "
                               "PostgreSQL database)")


def upgrade(engine: Engine, target: str = "head") -> None:
    """Apply every migration not yet applied (Alembic), in one transaction; up to ``target`` (the tests' stores of
    earlier releases) instead of the newest."""
    config = _config()
    refuse_other_unopened(engine)
    with _migrating, engine.connect().execution_options(**{WRITE: True}) as conn:
        set_lock_wait(conn, MIGRATION_WAIT_SECONDS)
        refuse_other(conn, MigrationContext.configure(conn).get_current_revision())
        config.attributes["connection"] = conn
        command.upgrade(config, target)
        conn.commit()
        set_lock_wait(conn, WAIT_SECONDS)
        conn.execution_options(**{LOCK_WAIT: None})


def verify_schema(engine: Engine) -> None:
    """A shared store is upgraded by the operator, once, not by whichever process starts first: refuse to work
    on a schema other than this version's."""
    head = head_revision()
    refuse_other_unopened(engine)
    path = _sqlite_file(engine)
    current = None
    if path is None or os.path.exists(path):  # connecting would make the file a check must not leave behind
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            if current == head:
                return
            refuse_other(conn, current)
    found = "has no schema yet" if current is None else f"has schema revision {current}, this version needs {head}"
    raise StoreSchemaError(f"the store {found}; run `mail-gateway db upgrade` (with the same GATEWAY_STORE_URL) "
                           "to bring it up to date")
