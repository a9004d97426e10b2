"""Everything the HTTP API adds to the app beyond its routes: API keys, size limit, idempotency, OpenAPI."""

from __future__ import annotations

from flask import Flask

from gateway import openapi
from gateway.auth import register_api_keys
from gateway.extension import MailGateway
from gateway.idempotency import IdempotencyStore
from gateway.limits import register_size_limit
from gateway.replay import register_idempotency


def install_api(app: Flask) -> None:
    """Raises ``ConfigurationError`` (e.g. an unusable GATEWAY_IDEMPOTENCY_URL) before anything is served."""
    settings = MailGateway.state(app).settings
    register_api_keys(app, settings.api_keys)
    register_size_limit(app, settings.gateway_max_message_bytes)
    store = IdempotencyStore(settings.idempotency_path)
    store.purge_expired()
    register_idempotency(app, store)
    app.register_blueprint(openapi.blueprint)
