"""The ``Spool`` behind a queued ``Sender``: store rendered messages durably and report each as queued."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from mail_gateway.mail.rendering import RenderedMessage
from mail_gateway.mail.result import QueuedResult
from mail_gateway.settings import GatewaySettings
from mail_gateway.store import messages
from mail_gateway.store.database import Store
from mail_gateway.store.unit import defer


class Spool:
    def __init__(self, store: Store, settings: GatewaySettings, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.lifetime = settings.gateway_queue_lifetime
        self.clock = clock
        self.arrived = threading.Event()  # wakes the workers of this process as soon as there is work

    def put(self, rendered: Sequence[RenderedMessage], *, via: str,
            send_at: Sequence[float | None]) -> list[QueuedResult]:
        """Every message in one transaction (or, inside a keyed request, in the request's own transaction)."""
        now = self.clock()
        new = [messages.NewMessage(messages.new_id(), m.message_id, m.envelope_from, m.recipients, m.data, via,
                                   now, at, max(at or now, now) + self.lifetime)
               for m, at in zip(rendered, send_at, strict=True)]

        def write(conn: object) -> None:
            messages.enqueue(conn, new)  # type: ignore[arg-type]

        if not defer(write):
            self.store.write(write)
        self.arrived.set()
        return [QueuedResult(m.id, m.message_id, m.status, m.recipients) for m in new]  # type: ignore[arg-type]
