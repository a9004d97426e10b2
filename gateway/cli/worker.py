"""``mail-gateway worker``: deliver queued messages, without serving HTTP. Any number of these processes (and
``serve`` processes with their own workers) share one store."""

from __future__ import annotations

import click

from mail_gateway.cli.allocator import return_large_blocks
from mail_gateway.cli.common import configured, wait_for_termination
from mail_gateway.cli.logs import configure_logging
from mail_gateway.queue.worker import DeliveryWorkers
from mail_gateway.runtime import Runtime
from mail_gateway.settings import load_settings


def start_workers(runtime: Runtime) -> DeliveryWorkers:
    """Start the runtime's delivery workers (stopped by its ``close()``) and say so."""
    workers = runtime.start_workers()
    click.echo(f"mail-gateway delivery workers ({workers.concurrency} at once, backend "
               f"{runtime.settings.backend_name}) on store {runtime.store.describe()}", err=True)
    return workers


@click.command()
@click.option("--concurrency", type=click.IntRange(1, 256),
              help="Messages delivered at once (default: GATEWAY_QUEUE_WORKERS, 16).")
@click.option("--metrics-port", type=click.IntRange(1, 65535),
              help="Also serve Prometheus metrics on 127.0.0.1:PORT/metrics.")
def worker(concurrency: int | None, metrics_port: int | None) -> None:
    """Deliver queued messages (GATEWAY_DELIVERY=queued) until SIGINT or SIGTERM."""
    # Set like GATEWAY_QUEUE_WORKERS, so that the SMTP pool follows it too.
    settings = configured(lambda: load_settings(**({"gateway_queue_workers": concurrency} if concurrency else {})))
    return_large_blocks()  # a large message's memory is given back once it is freed
    if not settings.queued:
        raise click.ClickException("configuration error: the worker delivers queued messages; set "
                                   "GATEWAY_DELIVERY=queued (the HTTP service must use it too)")
    runtime = configured(lambda: Runtime.build(settings))
    configure_logging()
    try:
        start_workers(runtime)
        if metrics_port is not None:
            from prometheus_client import start_http_server

            from mail_gateway.queue.metrics import registry_for

            start_http_server(metrics_port, addr="127.0.0.1", registry=registry_for(runtime.store))
        wait_for_termination()
    finally:
        runtime.close()
