"""``Runtime``: what one app or process sends with — its settings, its sender, its store and, with queued
delivery, its delivery workers — started and stopped in one place.

Every entry point builds it the same way (``Runtime.build``, through ``assembly.build_sender``): ``create_app``,
``MailGateway(app)`` and the ``serve``, ``worker`` and ``smtpd`` commands. An app keeps its runtime in
``app.extensions["mail_gateway"]``, and the features it serves (the HTTP API, the queue's routes, readiness, the
outbox page) read it with ``Runtime.of(app)``: none of them imports the Flask extension, which is a leaf.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

from mail_gateway.assembly import build_sender
from mail_gateway.backends.base import EmailBackend
from mail_gateway.sending import Sender
from mail_gateway.settings import GatewaySettings
from mail_gateway.store.database import Store

if TYPE_CHECKING:
    from mail_gateway.queue.worker import DeliveryWorkers

__all__ = ["RUNTIME_KEY", "Runtime"]
RUNTIME_KEY = "mail_gateway"


@dataclass
class Runtime:
    settings: GatewaySettings
    sender: Sender
    store: Store  # queued messages, statuses, webhooks, idempotency keys
    # The Flask-Mail/flask-mailman adapter of the app, when the Flask extension registered one (its AppMail).
    mail: Any = None
    # Senders of other backends that get_connection() named, kept per app (the extension's connection_senders).
    alternates: dict[str, Sender] = field(default_factory=dict)
    workers: DeliveryWorkers | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @classmethod
    def build(cls, settings: GatewaySettings, backend: EmailBackend | None = None) -> Runtime:
        """The sender and store the settings select; raises ``ConfigurationError`` naming the setting to fix."""
        sender, store = build_sender(settings, backend)
        return cls(settings, sender, store)

    @staticmethod
    def of(app: Flask | None = None) -> Runtime:
        """The runtime of ``app`` (default: the current app)."""
        app = app or current_app
        try:
            return app.extensions[RUNTIME_KEY]
        except KeyError:
            raise RuntimeError("the mail gateway is not registered on this app; build it with create_app() "
                               "or MailGateway(app)") from None

    def install(self, app: Flask) -> Runtime:
        app.extensions[RUNTIME_KEY] = self
        return self

    @property
    def backend(self) -> EmailBackend:
        return self.sender.backend

    def reconfigure(self, settings: GatewaySettings, sender: Sender | None = None, *,
                    stale: Callable[[str], bool] = lambda name: False, read: GatewaySettings | None = None) -> bool:
        """Use ``settings`` (and ``sender``, when given) for what is sent from now on; the replaced sender and
        the alternates ``stale`` names are closed once swapped out, so no new connection can pick them up. False,
        changing nothing, when ``read`` (the settings the change was made from) is no longer current: another
        change came first, and this one is to be made again from it."""
        with self._lock:
            if read is not None and self.settings is not read:
                return False
            replaced = [self.alternates.pop(name) for name in list(self.alternates) if stale(name)]
            if sender is not None:
                replaced.append(self.sender)
                self.sender = sender
            self.settings = settings
        for old in replaced:
            old.close()
        return True

    def alternate(self, name: str, build: Callable[[GatewaySettings], Sender]) -> Sender:
        """The sender kept for the backend ``name`` (``get_connection(name)``), built by ``build`` from the current
        settings; one built from settings a ``reconfigure`` replaced meanwhile is closed and built again."""
        while True:
            with self._lock:
                kept, settings = self.alternates.get(name), self.settings
            if kept is not None:
                return kept
            built = build(settings)  # outside the lock: building may take a while, and dial nothing yet
            with self._lock:
                if self.settings is settings:
                    kept = self.alternates.setdefault(name, built)
            if kept is built:
                return built
            built.close()
            if kept is not None:  # another thread's, built from the same settings
                return kept

    def start_workers(self) -> DeliveryWorkers:
        """Start delivering the queued messages of the store through this sender (queued delivery only)."""
        if self.sender.spool is None:
            raise RuntimeError("delivery workers deliver queued messages; set GATEWAY_DELIVERY=queued")
        from mail_gateway.queue.worker import DeliveryWorkers  # the queue extra's, which queued delivery required

        with self._lock:
            if self.workers is None:
                self.workers = DeliveryWorkers(self.sender, self.store, wakeup=self.sender.spool.arrived).start()
            return self.workers

    def close(self) -> None:
        """Stop the workers (deliveries in flight finish), then close the connections of the sender and of the
        named backends' senders (``alternate``), and the store."""
        with self._lock:
            workers, self.workers = self.workers, None
            alternates, self.alternates = list(self.alternates.values()), {}
        try:
            if workers is not None:
                workers.stop()
        finally:
            try:
                for sender in [self.sender, *alternates]:
                    sender.close()
            finally:
                self.store.close()
