"""The application factory of the gateway service."""

from __future__ import annotations

from flask import Flask

from mail_gateway.extension import MailGateway
from mail_gateway.http.queue_routes import install_queue_api
from mail_gateway.http.setup import install_http_api
from mail_gateway.outbox.page import install_outbox
from mail_gateway.settings import GatewaySettings


def create_app(settings: GatewaySettings | None = None) -> Flask:
    """Build the service. Without ``settings`` they are read from the environment; either way an unusable
    configuration raises ``ConfigurationError`` here, before anything is served."""
    app = Flask("mail_gateway")
    MailGateway(app, settings=settings)
    install_http_api(app)
    install_queue_api(app)
    install_outbox(app)
    return app
