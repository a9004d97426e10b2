"""The application factory for the gateway service."""

from __future__ import annotations

from flask import Flask

from gateway import api
from gateway.api_setup import install_api
from gateway.extension import MailGateway
from gateway.problems import register_error_handlers
from settings import GatewaySettings


def create_app(settings: GatewaySettings | None = None) -> Flask:
    """Build the service. Without ``settings`` they are read from the environment; either way an unusable
    configuration raises ``ConfigurationError`` here, before anything is served."""
    app = Flask("gateway")
    MailGateway(app, settings=settings)
    app.register_blueprint(api.blueprint)
    install_api(app)
    register_error_handlers(app)
    return app
