"""``mail-gateway smtpd``: accept mail over SMTP and send it through the configured backend."""

from __future__ import annotations

import logging
import signal
import threading

import click
from flask import Flask

from backends.errors import ConfigurationError
from gateway.app import create_app
from gateway.extension import MailGateway
from gateway.ingress_server import IngressServer
from gateway.log_setup import configure_logging
from settings import GatewaySettings, load_settings


def start_ingress(settings: GatewaySettings, app: Flask) -> IngressServer:
    """Start the ingress on the app's backend (the one its HTTP API uses), or exit with the reason."""
    # aiosmtpd logs every command line at INFO, and a deprecation notice at WARNING on every successful AUTH;
    # the gateway logs one line per message instead.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    try:
        server = IngressServer(settings, MailGateway.state(app).backend).start()
    except ConfigurationError as exc:
        raise click.ClickException(f"configuration error: {exc}") from exc
    click.echo(f"mail-gateway SMTP ingress ({settings.gateway_env}, backend {settings.backend_name}) on "
               f"smtp://{server.host}:{server.port}", err=True)
    return server


def wait_for_termination() -> None:
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stopping.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@click.command()
@click.option("--host", help="Address to listen on (default: GATEWAY_SMTP_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on (default: GATEWAY_SMTP_PORT, 1025).")
def smtpd(host: str | None, port: int | None) -> None:
    """Accept mail over SMTP and send it through the configured backend, until SIGINT or SIGTERM."""
    overrides = {k: v for k, v in (("gateway_smtp_host", host), ("gateway_smtp_port", port)) if v is not None}
    try:
        settings = load_settings(**overrides)
        app = create_app(settings)
    except ConfigurationError as exc:
        raise click.ClickException(f"configuration error: {exc}") from exc
    configure_logging()
    server = start_ingress(settings, app)
    try:
        wait_for_termination()
    finally:
        server.stop()
