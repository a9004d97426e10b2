"""``mail-gateway serve``: the HTTP API under waitress, a production WSGI server tuned against idle and slow
clients (``mail_gateway.http.server``), and the SMTP ingress with ``--smtp``."""

from __future__ import annotations

import signal
import sys

import click

from mail_gateway.app import create_app
from mail_gateway.cli.common import configured
from mail_gateway.cli.logs import configure_logging
from mail_gateway.cli.smtpd import start_ingress
from mail_gateway.cli.worker import start_workers
from mail_gateway.extension import MailGateway
from mail_gateway.settings import load_settings


@click.command()
@click.option("--host", help="Address to listen on (default: GATEWAY_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on (default: GATEWAY_PORT, 8000).")
@click.option("--threads", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Worker threads of the WSGI server.")
@click.option("--smtp", is_flag=True,
              help="Also accept mail over SMTP on GATEWAY_SMTP_HOST:GATEWAY_SMTP_PORT, through the same backend.")
@click.option("--no-worker", is_flag=True,
              help="With queued delivery, run no delivery workers here (run `mail-gateway worker` instead).")
def serve(host: str | None, port: int | None, threads: int, smtp: bool, no_worker: bool) -> None:
    """Serve the HTTP API under waitress, a production WSGI server (and the SMTP ingress with --smtp)."""
    from mail_gateway.http.server import HttpService

    overrides = {k: v for k, v in (("gateway_host", host), ("gateway_port", port)) if v is not None}
    settings = configured(lambda: load_settings(**overrides))
    app = configured(lambda: create_app(settings))
    # Bound before anything else starts, so a port in use or too few file descriptors fails at once.
    service = configured(lambda: HttpService(app, settings, threads=threads))
    state = MailGateway.state(app)
    sender = state.sender
    configure_logging()
    # SIGTERM (how service managers stop a process) unwinds like Ctrl-C: the ingress stops, the backend says
    # QUIT, and queued log lines are written before the process ends.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    workers = start_workers(sender, state.store) if settings.queued and not no_worker else None
    try:
        ingress = start_ingress(settings, sender) if smtp else None
        click.echo(f"mail-gateway ({settings.gateway_env}, backend {settings.backend_name}) on "
                   f"http://{settings.gateway_host}:{settings.gateway_port}", err=True)
        try:
            service.run()
        finally:
            if ingress is not None:
                ingress.stop()
    finally:
        if workers is not None:
            workers.stop()
        sender.close()
        state.store.close()
