"""The one factory of a ``Sender``: every process and app sends through one built here (``Runtime.build``, for
``create_app``, ``MailGateway``, ``smtpd``, ``worker`` and ``serve``; ``mail-gateway send``; the extension's
connections).

It sits above the features it puts together: ``sending`` may not import the queue (its floor is lower), and the
queue is only one of the things a sender is built from (the backend, the store, the spool).
"""

from __future__ import annotations

from mail_gateway.backends.base import EmailBackend
from mail_gateway.backends.registry import create_backend
from mail_gateway.queue.setup import delivery_settings, open_store, require_store
from mail_gateway.sending import Sender
from mail_gateway.sending.pipeline import build_pipeline
from mail_gateway.settings import GatewaySettings
from mail_gateway.store.database import Store
from mail_gateway.suppression.service import Suppressions
from mail_gateway.templating.library import TemplateLibrary


def build_sender(settings: GatewaySettings, backend: EmailBackend | None = None, *, store: Store | None = None,
                 direct: bool = False) -> tuple[Sender, Store]:
    """The sender and its store. With queued delivery the sender stores each message (a ``Spool``) for the
    delivery workers, which deliver it through this sender's backend. With queued delivery or a shared store the
    store is opened now, so a store that cannot work stops start-up; otherwise (direct, SQLite) it is opened when
    an idempotency key first needs it.

    ``store``: one already open to use (an app's, for the senders of its connections). ``direct``: the backend
    delivers at once whatever GATEWAY_DELIVERY says, for a backend the workers do not use (a connection's own, a
    test's outbox): a message queued through it would leave through the workers' backend instead."""
    given = store
    if given is None:
        require_store(settings)
    store = store or Store(settings.store_url, pool_size=settings.gateway_queue_workers + 4)
    # The folder of template files is read and checked before the store opens: a broken file stops start-up first.
    templates = TemplateLibrary(store, settings.templates)
    if given is None and (settings.queued or store.shared):
        open_store(store)
    spool = None
    if settings.queued and not direct:
        from mail_gateway.queue.spool import Spool  # SQLAlchemy: only where messages are stored

        spool = Spool(store, settings)
    if backend is None:
        backend = create_backend(delivery_settings(settings) if spool is not None else settings)
    return Sender(settings, backend, spool, pipeline=build_pipeline(settings), templates=templates,
                  suppressions=Suppressions(store, settings)), store
