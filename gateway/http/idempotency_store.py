"""Idempotency keys: a retried send with the same key and body replays the first response instead of sending.

The store is an SQLite file (stdlib ``sqlite3``): every worker process of a host sees the same keys, and they
survive a restart. A key is recorded as *in flight* in its own committed transaction before the message is
handed to the backend, so a crash mid-send leaves the key in flight (later retries get 409) rather than free
to send a second copy. No well-kept library offers this for Flask with a shared on-disk store, hence the
hand-written code.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from mail_gateway.errors import ConfigurationError

TTL_SECONDS = 24 * 60 * 60
_SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    created REAL NOT NULL,
    status INTEGER,          -- NULL while the first request is in flight
    mimetype TEXT,
    body BLOB
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created);
"""


@dataclass(frozen=True)
class StoredResponse:
    status: int
    mimetype: str
    body: bytes


@dataclass(frozen=True)
class Begun:
    """What ``begin`` found: nothing (go ahead), a finished response to replay, or a conflict."""

    replay: StoredResponse | None = None
    conflict: str | None = None  # "in-flight" or "mismatch"


class IdempotencyStore:
    def __init__(self, path: str | Path, *, ttl_seconds: float = TTL_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        """Checks that ``path`` can be created; the file itself is only made when the first key is used, so
        a gateway whose clients never send a key writes nothing."""
        self.path = str(path)
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._ready = False
        self._ready_lock = threading.Lock()
        directory = Path(self.path).resolve().parent
        if not directory.is_dir():
            raise ConfigurationError(
                f"GATEWAY_IDEMPOTENCY_URL: the directory of {self.path!r} does not exist; set it to "
                "sqlite:///<path> in an existing, writable directory", variable="GATEWAY_IDEMPOTENCY_URL")

    def _connect(self) -> sqlite3.Connection:
        # One short-lived connection per operation: safe across threads and processes; isolation_level=None
        # so the explicit BEGIN IMMEDIATE below takes the write lock before reading.
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        if not self._ready:
            with self._ready_lock:
                if not self._ready:
                    db.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer across processes
                    db.executescript(_SCHEMA)
                    self._ready = True
        return db

    def begin(self, key: str, fingerprint: str) -> Begun:
        """Claim ``key`` for a request with ``fingerprint``, atomically across threads and processes."""
        now = self.clock()
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            # Every expired key goes, not only this one, so the file stays as small as a day's traffic.
            db.execute("DELETE FROM idempotency_keys WHERE created < ?", (now - self.ttl_seconds,))
            row = db.execute("SELECT fingerprint, status, mimetype, body FROM idempotency_keys WHERE key = ?",
                             (key,)).fetchone()
            if row is None:
                db.execute("INSERT INTO idempotency_keys (key, fingerprint, created) VALUES (?, ?, ?)",
                           (key, fingerprint, now))
                db.execute("COMMIT")
                return Begun()
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()
        stored_fingerprint, status, mimetype, body = row
        if stored_fingerprint != fingerprint:
            return Begun(conflict="mismatch")
        if status is None:
            return Begun(conflict="in-flight")
        return Begun(replay=StoredResponse(status, mimetype, bytes(body)))

    def finish(self, key: str, response: StoredResponse) -> None:
        """Record the response the first request got; from now on it is replayed."""
        with closing(self._connect()) as db:
            db.execute("UPDATE idempotency_keys SET status = ?, mimetype = ?, body = ? WHERE key = ?",
                       (response.status, response.mimetype, response.body, key))

    def release(self, key: str) -> None:
        """Forget ``key``: nothing was sent, so a retry must really try again."""
        with closing(self._connect()) as db:
            db.execute("DELETE FROM idempotency_keys WHERE key = ? AND status IS NULL", (key,))

    def check(self, timeout: float = 1.0) -> None:
        """Readiness: raise ``ConfigurationError`` unless a keyed request could claim its key now."""
        if not Path(self.path).exists():
            if self._ready:  # it was there: deleted while the gateway runs
                raise ConfigurationError(f"the idempotency store {self.path!r} was deleted",
                                         variable="GATEWAY_IDEMPOTENCY_URL")
            return  # made when the first key is used; its directory was checked at start-up
        try:
            with closing(sqlite3.connect(self.path, timeout=timeout, isolation_level=None)) as db:
                db.execute("BEGIN IMMEDIATE")  # what begin() needs: the write lock, within the bound
                db.execute("SELECT 1 FROM idempotency_keys LIMIT 1").fetchall()
                db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise ConfigurationError(f"the idempotency store {self.path!r} does not answer: {exc}",
                                     variable="GATEWAY_IDEMPOTENCY_URL") from exc

    def purge_expired(self) -> int:
        with closing(self._connect()) as db:
            return db.execute("DELETE FROM idempotency_keys WHERE created < ?",
                              (self.clock() - self.ttl_seconds,)).rowcount
