"""``mail-gateway serve``: the HTTP API under waitress, a production WSGI server tuned against idle and slow
clients (``mail_gateway.http.server``), and the SMTP ingress with ``--smtp``."""

from __future__ import annotations

import signal

import click

from mail_gateway.app import create_app
from mail_gateway.cli.allocator import return_large_blocks
from mail_gateway.cli.common import configured
from mail_gateway.cli.logs import configure_logging
from mail_gateway.cli.smtpd import start_ingress
from mail_gateway.cli.worker import start_workers
from mail_gateway.runtime import Runtime
from mail_gateway.settings import GatewaySettings, load_settings


@click.command()
@click.option("--host", help="Address to listen on (default: GATEWAY_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on (default: GATEWAY_PORT, 8000).")
@click.option("--threads", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Worker threads of the WSGI server.")
@click.option("--smtp", is_flag=True,
              help="Also accept mail over SMTP on GATEWAY_SMTP_HOST:GATEWAY_SMTP_PORT, through the same backend.")
@click.option("--no-worker", is_flag=True,
              help="With queued delivery, run no delivery workers here (run `mail-gateway worker` instead).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="HTTP processes on the one port, under a prefork master (gunicorn's); each has --threads "
                   "threads, its own SMTP pool and, with queued delivery, its own delivery workers.")
def serve(host: str | None, port: int | None, threads: int, smtp: bool, no_worker: bool, workers: int) -> None:
    """Serve the HTTP API under waitress, a production WSGI server (and the SMTP ingress with --smtp)."""
    from mail_gateway.http.server import HttpService

    overrides = {k: v for k, v in (("gateway_host", host), ("gateway_port", port)) if v is not None}
    settings = configured(lambda: load_settings(**overrides))
    return_large_blocks()  # a large message's memory is given back once it is freed
    if workers > 1:
        if smtp:
            raise click.UsageError("--smtp runs one SMTP ingress, which N HTTP processes cannot share; with "
                                   "--workers, run the ingress as its own process: mail-gateway smtpd")
        return _prefork(settings, workers, threads, delivery_workers=settings.queued and not no_worker)
    app = configured(lambda: create_app(settings))
    # Bound before anything else starts, so a port in use or too few file descriptors fails at once.
    service = configured(lambda: HttpService(app, settings, threads=threads))
    runtime = Runtime.of(app)
    configure_logging()
    # SIGTERM (how service managers stop a process) is a graceful stop: the requests under way are answered,
    # then the run unwinds like Ctrl-C does at once: the ingress stops, the backend says QUIT, and queued log
    # lines are written before the process ends.
    signal.signal(signal.SIGTERM, lambda *_: service.request_stop())
    try:
        if settings.queued and not no_worker:
            start_workers(runtime)
        ingress = start_ingress(settings, runtime.sender, runtime.store) if smtp else None
        click.echo(_started(settings), err=True)
        try:
            service.run()
        finally:
            if ingress is not None:
                ingress.stop()
    finally:
        runtime.close()


def _prefork(settings: GatewaySettings, workers: int, threads: int, *, delivery_workers: bool) -> None:
    from mail_gateway.cli.prefork import PreforkServer
    from mail_gateway.http.server import SPARE_FILES, bind, ensure_open_files

    # The whole configuration is checked here, once, before any process forks: the app is built and closed
    # again, so the master holds no store connection or SMTP pool its workers would inherit.
    app = configured(lambda: create_app(settings))
    Runtime.of(app).close()
    configured(lambda: ensure_open_files(settings.gateway_http_max_connections + threads + SPARE_FILES))
    sock = configured(lambda: bind(settings.gateway_host, settings.gateway_port))
    server = PreforkServer(settings, sock, workers=workers, threads=threads, delivery_workers=delivery_workers)
    click.echo(_started(settings, f", {workers} HTTP processes"), err=True)
    configured(server.run)


def _started(settings: GatewaySettings, processes: str = "") -> str:
    """The start-up line: where the API is and, when it is on, where to watch the mail in a browser."""
    host = f"[{settings.gateway_host}]" if ":" in settings.gateway_host else settings.gateway_host
    base = f"http://{host}:{settings.gateway_port}"
    line = f"mail-gateway ({settings.gateway_env}, backend {settings.backend_name}) on {base}{processes}"
    return f"{line}; outbox page {base}/outbox" if settings.outbox_enabled else line
