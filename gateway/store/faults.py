"""What a store error means beyond "not written": a change the store refuses for good, connections to replace,
or a disk with no room left.

A change that breaks a constraint (its message deleted meanwhile, or never in a store file recreated since) or holds
a value the store cannot (PostgreSQL takes no NUL in text) fails again however often it is tried: its caller drops
it or changes it, rather than wait and try again as it does while the store is locked or out of reach.

SQLite opens a file it cannot open for writing read-only, silently, and such a connection stays read-only after
the file is writable again: kept (by the writer, or in the pool), it would refuse every write until a restart.
A full disk refuses only the writes that need room, so a probe that writes nothing passes on it: readiness learns
of it from the writes that failed.
"""

from __future__ import annotations

import time

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from mail_gateway.errors import StoreRejectedError, StoreUnavailableError, StoreValueError

# SQLite's primary result codes after which a connection is of no more use: READONLY, IOERR, CORRUPT, CANTOPEN,
# NOTADB (after an I/O error, or on a damaged or unopenable file, it answers only that).
_SQLITE_UNUSABLE = frozenset({8, 10, 11, 14, 26})
_SQLITE_FULL = 13
_POSTGRES_UNUSABLE = frozenset({"25006"})  # read_only_sql_transaction: the server is a standby now
_POSTGRES_FULL = "53100"  # disk_full
# How long a write refused for want of room keeps the store not ready, unless a row is written since. Bounded, so
# that a node no write reaches any more (a load balancer took it out) is tried again.
FULL_SECONDS = 15.0


def refusal(exc: SQLAlchemyError) -> StoreUnavailableError:
    """What the thread of a change that failed with ``exc`` raises (``exc`` its cause): ``StoreRejectedError``
    when the store refused the change itself, ``StoreValueError`` when for a value it cannot hold."""
    if isinstance(exc, DataError):
        error: StoreUnavailableError = StoreValueError(f"the store cannot hold a value: {type(exc).__name__}")
    elif isinstance(exc, IntegrityError):
        error = StoreRejectedError(f"the store refused a change: {type(exc).__name__}")
    else:
        error = StoreUnavailableError(f"the store could not take a change: {type(exc).__name__}")
    error.__cause__ = exc
    return error


def read_failure(exc: BaseException, text: str) -> StoreUnavailableError:
    """What a read that failed with ``exc`` raises: a value it cannot compare (a NUL in a PostgreSQL text
    parameter) is the request's fault; anything else the store's."""
    kind = StoreValueError if isinstance(exc, DataError) else StoreUnavailableError
    return kind(f"the store could not be read: {text}")


def _codes(exc: BaseException) -> tuple[int | None, str | None]:
    cause = getattr(exc, "orig", None) or exc
    code = getattr(cause, "sqlite_errorcode", None)
    # An extended SQLite code (SQLITE_READONLY_DBMOVED, SQLITE_IOERR_WRITE...) keeps the primary one in its low byte.
    return (code & 0xFF if code is not None else None), getattr(cause, "sqlstate", None)


def connection_unusable(exc: BaseException) -> bool:
    """``exc`` leaves the connection that raised it unusable, and any other opened in the same conditions: replace
    them rather than go on with them."""
    if getattr(exc, "connection_invalidated", False):
        return True
    sqlite, sqlstate = _codes(exc)
    return sqlite in _SQLITE_UNUSABLE or sqlstate in _POSTGRES_UNUSABLE


def no_room(exc: BaseException) -> bool:
    sqlite, sqlstate = _codes(exc)
    return sqlite == _SQLITE_FULL or sqlstate == _POSTGRES_FULL


def rows_written(conn: Connection) -> int | None:
    """How many rows the connection has changed since it opened (SQLite); None where the driver does not say."""
    return getattr(conn.connection.driver_connection, "total_changes", None)


class Room:
    """Whether a write failed lately for want of room, and why."""

    def __init__(self) -> None:
        self.noted: tuple[float, str] | None = None

    def note(self, exc: BaseException, text: str) -> None:
        if no_room(exc):
            self.noted = (time.monotonic(), text)

    def freed(self) -> None:
        self.noted = None

    def full(self) -> str | None:
        """Why a write failed for want of room less than ``FULL_SECONDS`` ago, no row written since; else None."""
        noted = self.noted
        if noted is None or time.monotonic() - noted[0] >= FULL_SECONDS:
            return None
        return noted[1]
