"""New work wakes idle workers on other processes and hosts at once: PostgreSQL's LISTEN/NOTIFY.

Whatever makes a message due now (enqueue, retry, a release by a stopping worker) says ``NOTIFY`` in its own
transaction, so the notice goes out when, and only if, it commits; many of them in one group commit are one
notice. Each worker process keeps one connection that LISTENs and sets its wake-up event. A notice can be missed
(the listening connection was being re-established), so workers still look on their own every
``GATEWAY_QUEUE_POLL_INTERVAL``; the figures behind this choice are in the README ("Running on several hosts").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection

from mail_gateway.lifecycle import Loop
from mail_gateway.store.engine import postgres_connect_args

log = logging.getLogger("mail_gateway.store")
CHANNEL = "mail_gateway_queue"
RECONNECT_SECONDS = 1.0


def announce(conn: Connection) -> None:
    """Tell listening workers that work is due (on PostgreSQL; SQLite has no such thing)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"NOTIFY {CHANNEL}")


class Listener:
    """A thread that LISTENs on its own connection and sets ``wakeup`` at each notice (and after it
    (re)connects, since notices sent while it was away are lost)."""

    def __init__(self, connect: Callable[[], Any], wakeup: threading.Event, describe: Callable[[BaseException], str]):
        self._connect, self.wakeup, self._describe = connect, wakeup, describe
        self._loop = Loop("queue-listen", self._listen)
        self._stopping = self._loop.stopping

    def start(self) -> Listener:
        self._loop.start()
        return self

    def stop(self) -> None:
        self._loop.stop(5)

    def _listen(self) -> None:
        """One connection's life: LISTEN until stopped, or until the connection fails."""
        try:
            with self._connect() as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                self.wakeup.set()
                while not self._stopping.is_set():
                    # A bounded wait, so that stop() is honoured within a second.
                    for _ in conn.notifies(timeout=1.0, stop_after=1):
                        self.wakeup.set()
        except Exception as exc:  # the listener must outlive the database's restarts; workers poll meanwhile
            if not self._stopping.is_set():
                log.warning("listening for new work failed (%s); workers poll until it is back",
                            self._describe(exc))
                self._stopping.wait(RECONNECT_SECONDS)


def listen(engine: Any, wakeup: threading.Event, describe: Callable[[BaseException], str]) -> Listener:
    """A started ``Listener`` on the PostgreSQL server of ``engine``, on a connection of its own (outside the
    pool: it stays open as long as the listener runs)."""
    args, params = engine.dialect.create_connect_args(engine.url)
    params = {**params, **postgres_connect_args(), "autocommit": True}

    def connect() -> Any:
        import psycopg

        return psycopg.connect(*args, **params)

    return Listener(connect, wakeup, describe).start()
