"""The application factory for the gateway service."""

from __future__ import annotations

from flask import Flask

from gateway import api, readiness
from gateway.api_setup import install_api
from gateway.extension import MailGateway
from gateway.inbox import register_outbox_routes
from gateway.problems import register_error_handlers
from settings import GatewaySettings


def create_app(settings: GatewaySettings | None = None) -> Flask:
    """Build the service. Without ``settings`` they are read from the environment; either way an unusable
    configuration raises ``ConfigurationError`` here, before anything is served."""
    app = Flask("gateway")
    MailGateway(app, settings=settings)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(readiness.blueprint)
    register_outbox_routes(app)
    install_api(app)
    register_error_handlers(app)
    return app
