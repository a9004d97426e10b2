"""``mail-gateway worker``: deliver queued messages, without serving HTTP. Any number of these processes (and
``serve`` processes with their own workers) share one store."""

from __future__ import annotations

import click

from mail_gateway.assembly import build_sender
from mail_gateway.cli.allocator import return_large_blocks
from mail_gateway.cli.common import configured, wait_for_termination
from mail_gateway.cli.logs import configure_logging
from mail_gateway.queue.worker import DeliveryWorkers
from mail_gateway.sending import Sender
from mail_gateway.settings import load_settings
from mail_gateway.store.database import Store


def start_workers(sender: Sender, store: Store) -> DeliveryWorkers:
    wakeup = sender.spool.arrived if sender.spool is not None else None
    workers = DeliveryWorkers(sender, store, wakeup=wakeup).start()
    click.echo(f"mail-gateway delivery workers ({workers.concurrency} at once, backend "
               f"{sender.settings.backend_name}) on store {store.describe()}", err=True)
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
    sender, store = configured(lambda: build_sender(settings))
    configure_logging()
    workers = start_workers(sender, store)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from mail_gateway.queue.metrics import registry_for

        start_http_server(metrics_port, addr="127.0.0.1", registry=registry_for(store))
    try:
        wait_for_termination()
    finally:
        workers.stop()
        sender.close()
        store.close()
