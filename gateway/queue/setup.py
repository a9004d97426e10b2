"""Build the sender and the store a process runs on: direct, or queued behind a ``Spool``."""

from __future__ import annotations

from mail_gateway.backends.base import EmailBackend
from mail_gateway.backends.registry import create_backend
from mail_gateway.errors import ConfigurationError, StoreSchemaError, StoreUnavailableError
from mail_gateway.queue.spool import Spool
from mail_gateway.sending import Sender
from mail_gateway.settings import GatewaySettings
from mail_gateway.store.database import Store


def build_sender(settings: GatewaySettings, backend: EmailBackend | None = None) -> tuple[Sender, Store]:
    """The sender and its store. With queued delivery or a shared store the store is opened now, so a store that
    cannot work stops start-up; otherwise (direct, SQLite) it is opened when an idempotency key first needs it."""
    store = Store(settings.store_url, pool_size=settings.gateway_queue_workers + 4)
    spool = None
    if settings.queued or store.shared:
        open_store(store)
    if settings.queued:
        spool = Spool(store, settings)
    return Sender(settings, backend or create_backend(delivery_settings(settings)), spool), store


def delivery_settings(settings: GatewaySettings) -> GatewaySettings:
    """With queued delivery only the workers use the SMTP connection pool: unless MAIL_POOL_SIZE is set, it holds a
    connection for each of them, so that GATEWAY_QUEUE_WORKERS deliveries really run at once. Against a distant
    upstream a delivery mostly waits on replies, and the rate grows with the connections (``make bench``)."""
    if (settings.queued and "mail_pool_size" not in settings.model_fields_set
            and settings.mail_pool_size < settings.gateway_queue_workers):
        return settings.model_copy(update={"mail_pool_size": settings.gateway_queue_workers})
    return settings


def open_store(store: Store) -> Store:
    """Open the store or stop start-up in one line: a shared store must answer and have this version's schema
    (an embedded one is created and upgraded)."""
    try:
        return store.open()
    except StoreSchemaError as exc:
        raise ConfigurationError(f"GATEWAY_STORE_URL ({store.describe()}): {exc}",
                                 variable="GATEWAY_STORE_URL") from exc
    except StoreUnavailableError as exc:
        raise ConfigurationError(f"GATEWAY_STORE_URL ({store.describe()}): {exc}; set it to a store the gateway "
                                 "can open and write", variable="GATEWAY_STORE_URL") from exc
