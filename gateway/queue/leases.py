"""The claims a worker process holds, under a lease it renews every third of the lease.

A message stays held until its outcome is written (``mail_gateway.queue.recorder``), so a store that does not
answer for longer than a lease keeps messages held whose lease has ended in the store: the renewals failed. Were
the process then to claim before renewing, it would take those messages again, its own, and send them a second
time. So while renewals are late the next claiming transaction renews the claims in hand first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.engine import Connection

from mail_gateway.errors import StoreUnavailableError
from mail_gateway.store import claims
from mail_gateway.store.database import Store

log = logging.getLogger("mail_gateway.queue")


class Held:
    def __init__(self, store: Store, lease: float, clock: Callable[[], float]) -> None:
        self.store, self.lease, self.clock = store, lease, clock
        self._claims: dict[str, claims.Claimed] = {}
        self._leased_until = 0.0  # every claim in hand is leased at least until then, as far as this process knows
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._claims)

    def claim(self, limit: int) -> list[claims.Claimed]:
        """Claim and hold up to ``limit`` due messages; raises ``StoreUnavailableError``."""
        with self._lock:
            late = list(self._claims.values()) if self._leased_until - self.clock() < self.lease / 3 else []

        def work(conn: Connection) -> tuple[float, list[claims.Claimed]]:
            now = self.clock()
            if late:
                claims.renew(conn, late, now + self.lease)
            # The generation is read in the transaction: after the writer noticed a store file recreated, if it was.
            return now, claims.claim(conn, now=now, limit=limit, lease=self.lease, generation=self.store.generation)

        now, found = self.store.write(work)
        with self._lock:
            if late or not self._claims:
                self._leased_until = now + self.lease
            self._claims.update((claimed.id, claimed) for claimed in found)
        return found

    def renew(self) -> None:
        with self._lock:
            held = list(self._claims.values())
        if not held:
            return
        until = self.clock() + self.lease
        try:
            self.store.write(lambda conn: claims.renew(conn, held, until))
        except StoreUnavailableError as exc:
            log.warning("could not renew the lease of %d claimed messages: %s", len(held), exc)
            return
        with self._lock:  # those claimed since are leased until later still
            self._leased_until = until

    def let_go(self, ids: list[str]) -> None:
        with self._lock:
            for message_id in ids:
                self._claims.pop(message_id, None)
