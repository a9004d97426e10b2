"""``mail-gateway smtpd``: accept mail over SMTP and send it through the configured backend."""

from __future__ import annotations

import logging

import click

from mail_gateway.cli.allocator import return_large_blocks
from mail_gateway.cli.common import configured, wait_for_termination
from mail_gateway.cli.logs import configure_logging
from mail_gateway.cli.worker import start_workers
from mail_gateway.ingress.server import IngressServer
from mail_gateway.runtime import Runtime
from mail_gateway.sending import Sender
from mail_gateway.settings import GatewaySettings, load_settings
from mail_gateway.store.database import Store


def start_ingress(settings: GatewaySettings, sender: Sender, store: Store | None = None) -> IngressServer:
    """Start the ingress on ``sender`` (in ``serve --smtp``, the one the HTTP API uses), or exit with the reason."""
    # aiosmtpd logs every command line at INFO, and a deprecation notice at WARNING on every successful AUTH;
    # the gateway logs one line per message instead.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    server = configured(lambda: IngressServer(settings, sender, store=store).start())
    click.echo(f"mail-gateway SMTP ingress ({settings.gateway_env}, backend {settings.backend_name}) on "
               f"smtp://{server.host}:{server.port}", err=True)
    return server


@click.command()
@click.option("--host", help="Address to listen on (default: GATEWAY_SMTP_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on (default: GATEWAY_SMTP_PORT, 1025).")
@click.option("--no-worker", is_flag=True,
              help="With queued delivery, run no delivery workers here (run `mail-gateway worker` instead).")
def smtpd(host: str | None, port: int | None, no_worker: bool) -> None:
    """Accept mail over SMTP and send it through the configured backend, until SIGINT or SIGTERM."""
    overrides = {k: v for k, v in (("gateway_smtp_host", host), ("gateway_smtp_port", port)) if v is not None}
    settings = configured(lambda: load_settings(**overrides))
    return_large_blocks()  # a large message's memory is given back once it is freed
    runtime = configured(lambda: Runtime.build(settings))
    configure_logging()
    try:
        if settings.queued and not no_worker:
            start_workers(runtime)
        server = start_ingress(settings, runtime.sender, runtime.store)
        try:
            wait_for_termination()
        finally:
            server.stop()
    finally:
        runtime.close()
