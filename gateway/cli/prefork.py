"""``mail-gateway serve --workers N``: N HTTP processes on one listening socket under gunicorn's master.

gunicorn's arbiter is the well-kept part: it forks the workers, restarts one that dies or stops answering its
heartbeat, and handles the signals (TERM stops gracefully, HUP restarts the workers, TTIN/TTOU add or remove
one). Each worker process runs what a single ``serve`` runs — the app built in that process (its own SMTP pool
and store connections, never inherited from the master), served by ``HttpService``, waitress tuned against idle
and slow clients — so every connection guarantee of one process holds in each. The heartbeat is sent from the
event loop, so a worker whose loop hangs is replaced. The workers spread the connections over themselves through
a table the master makes before forking them (``http.balance``).

The master binds the socket itself, so a port in use fails at start-up in one line, and checks the whole
configuration by building the app once before forking (then closes it).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import tempfile
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.sock import TCP6Socket, TCPSocket
from gunicorn.workers.base import Worker

from mail_gateway.app import create_app
from mail_gateway.cli.logs import configure_logging
from mail_gateway.errors import ConfigurationError
from mail_gateway.http.balance import ConnectionTable
from mail_gateway.http.server import GRACEFUL_SECONDS, HttpService
from mail_gateway.runtime import Runtime
from mail_gateway.settings import GatewaySettings

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# What the master sends a worker (gunicorn's Worker.init_signals sets a handler for each).
WORKER_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGABRT, signal.SIGUSR1, signal.SIGWINCH}


class GatewayWorker(Worker):
    """One HTTP process: the app, its delivery workers if any, waitress on the master's sockets."""

    service: HttpService | None = None
    row: int | None = None  # in the master's ConnectionTable, given before the fork (assign_row)

    def init_process(self) -> None:
        # Counters of every process in shared files (prometheus_client's multiprocess mode), chosen before this
        # process creates any metric: /metrics, answered by one worker, then counts them all.
        if MULTIPROCESS_ENV in os.environ:
            from prometheus_client import values

            values.ValueClass = values.get_value_class()
        configure_logging(processes=True)
        super().init_process()

    def init_signals(self) -> None:
        super().init_signals()
        # Blocked since the fork (GatewayArbiter.spawn_worker): one sent meanwhile is delivered now, to these handlers.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, WORKER_SIGNALS)

    def load_wsgi(self) -> None:
        try:
            super().load_wsgi()
        except ConfigurationError as exc:  # the master checked it; something changed since (the store went away)
            print(f"Error: configuration error: {exc}", file=sys.stderr, flush=True)
            sys.exit(Arbiter.WORKER_BOOT_ERROR)  # the master stops, saying the worker failed to boot

    def run(self) -> None:
        server: PreforkServer = self.app
        runtime = Runtime.of(self.wsgi)
        try:
            if server.delivery_workers:
                from mail_gateway.cli.worker import start_workers

                start_workers(runtime)
            balance = None if self.row is None else server.table.of(self.row)
            self.service = HttpService(self.wsgi, server.settings, threads=server.threads,
                                       sockets=[listener.sock for listener in self.sockets], tick=self._tick,
                                       graceful_seconds=self.cfg.graceful_timeout, balance=balance)
            self.service.run()
        finally:
            runtime.close()

    def _tick(self) -> None:
        """The heartbeat, and a graceful stop once the master asked for one (TERM) or went away."""
        self.notify()
        if (not self.alive or self.ppid != os.getppid()) and self.service is not None:
            self.service.request_stop()


def assign_row(arbiter: Arbiter, worker: GatewayWorker) -> None:
    """gunicorn's pre_fork hook, in the master: a row of the connection table no live worker holds."""
    table: ConnectionTable = arbiter.app.table
    worker.row = table.free_row({each.row for each in arbiter.WORKERS.values() if each.row is not None})


def vacate_row(arbiter: Arbiter, worker: GatewayWorker) -> None:
    """gunicorn's child_exit hook, in the master: the others stop waiting for a worker that ended, at once."""
    if worker.row is not None:
        arbiter.app.table.vacate(worker.row)


class GatewayArbiter(Arbiter):
    def spawn_worker(self) -> int:
        # A TERM that reaches a new worker before it has set its own handlers runs the master's handler, copied by
        # the fork, which queues it where nothing in the worker reads it: the worker then served on until the
        # master gave up after the graceful timeout and killed it. Blocked from before the fork until the worker's
        # handlers are set (GatewayWorker.init_signals), such a signal waits instead of being lost.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_SIGNALS)
        try:
            return super().spawn_worker()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class PreforkServer(BaseApplication):
    def __init__(self, settings: GatewaySettings, sock: socket.socket, *, workers: int, threads: int,
                 delivery_workers: bool) -> None:
        """``sock``: the listening socket, bound already (``http.server.bind``) so that a port in use stops
        start-up in one line; gunicorn's master takes it over."""
        self.settings, self.sock, self.workers, self.threads = settings, sock, workers, threads
        self.delivery_workers = delivery_workers
        # A row for each worker, twice over: on HUP gunicorn starts the new workers before the old ones have gone.
        self.table = ConnectionTable(2 * workers + 2)
        super().__init__()

    def load_config(self) -> None:
        host = self.settings.gateway_host
        address = f"[{host}]" if ":" in host else host
        for name, value in {"bind": [f"{address}:{self.settings.gateway_port}"], "workers": self.workers,
                            "worker_class": f"{__name__}.GatewayWorker", "graceful_timeout": GRACEFUL_SECONDS,
                            "timeout": 30, "proc_name": "mail-gateway", "control_socket_disable": True,
                            "accesslog": None, "pre_fork": assign_row,
                            "child_exit": vacate_row}.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        return create_app(self.settings)

    def run(self) -> None:
        sock = self.sock
        arbiter = GatewayArbiter(self)
        kind = TCP6Socket if sock.family == TCP6Socket.FAMILY else TCPSocket
        arbiter.LISTENERS = [kind(sock.getsockname()[:2], self.cfg, arbiter.log, fd=os.dup(sock.fileno()))]
        sock.close()
        metrics_dir = None
        if MULTIPROCESS_ENV not in os.environ:
            metrics_dir = os.environ[MULTIPROCESS_ENV] = tempfile.mkdtemp(prefix="mail-gateway-metrics-")
        master = os.getpid()
        try:
            arbiter.run()
        finally:
            # A worker leaves through here too: gunicorn forks it inside arbiter.run, and it ends by SystemExit.
            # Removed by a worker (each one HUP retired), the directory was gone for the next worker to boot, which
            # then failed and took the master down with it. Only the master removes it.
            if metrics_dir is not None and os.getpid() == master:
                shutil.rmtree(metrics_dir, ignore_errors=True)
