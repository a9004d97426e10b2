"""Everything the HTTP API adds to an app: its routes, API keys, size limit, idempotency keys, readiness,
OpenAPI, and the one place errors become problem responses."""

from __future__ import annotations

from flask import Flask

from mail_gateway.http import (
    openapi,
    readiness,
    routes,
    suppression_routes,
    template_routes,
    unsubscribe_routes,
)
from mail_gateway.http.auth import register_api_keys
from mail_gateway.http.hosts import register_allowed_hosts
from mail_gateway.http.idempotency import register_idempotency
from mail_gateway.http.keyring import Keyring
from mail_gateway.http.limits import register_size_limit
from mail_gateway.http.nosniff import register_nosniff
from mail_gateway.http.problems import register_error_handlers
from mail_gateway.runtime import Runtime


def install_http_api(app: Flask) -> None:
    """Raises ``ConfigurationError`` (production without API keys, an unusable GATEWAY_STORE_URL, a wildcard
    GATEWAY_HOST without GATEWAY_ALLOWED_HOSTS) before anything is served."""
    settings = Runtime.of(app).settings
    settings.check_http_service()
    register_allowed_hosts(app, settings)  # first: a request for another name is refused before anything else
    app.register_blueprint(routes.blueprint)
    app.register_blueprint(template_routes.blueprint)
    app.register_blueprint(suppression_routes.blueprint)
    app.register_blueprint(unsubscribe_routes.blueprint)
    app.register_blueprint(readiness.blueprint)
    app.register_blueprint(openapi.blueprint)
    register_api_keys(app, settings.api_keys, settings.api_key_names)
    register_size_limit(app, settings.gateway_max_message_bytes)
    register_idempotency(app, Keyring(Runtime.of(app).store, mode=settings.gateway_delivery,
                                      lease=settings.gateway_queue_lease))
    register_error_handlers(app)
    register_nosniff(app)
