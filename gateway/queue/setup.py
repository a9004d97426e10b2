"""What the queue asks of a process's set-up (``mail_gateway.assembly``): the workers' share of the SMTP pool, and
a store opened or start-up stopped in one line (also when the settings ask for a store the install lacks)."""

from __future__ import annotations

from mail_gateway.errors import ConfigurationError, StoreSchemaError, StoreUnavailableError
from mail_gateway.extras import require
from mail_gateway.settings import GatewaySettings
from mail_gateway.store.database import Store


def delivery_settings(settings: GatewaySettings) -> GatewaySettings:
    """The settings of the backend the delivery workers use: a copy, whose SMTP subject (``settings.smtp``, what
    the SMTP backend is built from) is built from the values changed here.

    The queue is the one retry authority: a claim is one attempt, and GATEWAY_QUEUE_BACKOFF_* say when the next one
    comes. So the backend makes one pass over its upstreams per claim and never waits: MAIL_RETRY_ATTEMPTS becomes
    the number of upstreams, and the backend backs off only once every upstream has had its turn. A second
    upstream (failover, roundrobin) is still tried at once; with one upstream an attempt is one transaction.

    Only the workers use the SMTP connection pool: unless MAIL_POOL_SIZE is set, it holds a connection for each of
    them, so that GATEWAY_QUEUE_WORKERS deliveries really run at once. Against a distant upstream a delivery mostly
    waits on replies, and the rate grows with the connections (``make bench``)."""
    if not settings.queued:
        return settings
    update: dict[str, int] = {"mail_retry_attempts": max(1, len(settings.smtp_upstreams()[1]))}
    if "mail_pool_size" not in settings.model_fields_set and settings.mail_pool_size < settings.gateway_queue_workers:
        update["mail_pool_size"] = settings.gateway_queue_workers
    return settings.model_copy(update=update)


def require_store(settings: GatewaySettings) -> None:
    """Stop start-up when the settings ask for the store and the queue extra (SQLAlchemy, Alembic) is not
    installed. Without them an app delivers directly and keeps nothing: no suppression list, no stored template."""
    if settings.queued:
        require("queue", "GATEWAY_DELIVERY=queued", variable="GATEWAY_DELIVERY")
    elif "gateway_store_url" in settings.model_fields_set:
        require("queue", "GATEWAY_STORE_URL", variable="GATEWAY_STORE_URL")


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
