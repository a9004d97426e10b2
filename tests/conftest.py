from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ingress_support import IngressFactory
from postgres_server import PostgresServer
from queue_support import Queued
from smtp_server import RecordingHandler, SmtpServer

from mail_gateway.settings import GatewaySettings
from mail_gateway.store.database import Store


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--http-server", choices=("serve", "granian"), default="serve",
                     help="the server tests/test_http_server.py runs the gateway under: serve (what `mail-gateway "
                          "serve` runs) or granian, to hold a candidate to the same connection guarantees")


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """No MAIL_*/GATEWAY_* variable or .env file of the machine running the tests leaks into them."""
    for name in list(os.environ):
        if name.upper().startswith(("MAIL_", "GATEWAY_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def stores_closed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every store a test opened (apps included, which nothing else closes) is closed when it ends, so no
    database connection outlives its test (psycopg warns about one collected while open)."""
    opened: list[Store] = []
    original = Store.__init__

    def tracked(self: Store, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(Store, "__init__", tracked)
    yield
    for store in opened:
        store.close()


@pytest.fixture
def make_settings() -> Callable[..., GatewaySettings]:
    def make(**values: Any) -> GatewaySettings:
        values.setdefault("gateway_env", "testing")
        return GatewaySettings(_env_file=None, **values)

    return make


@pytest.fixture
def queued_apps() -> Iterator[list[Queued]]:
    """Queued apps a test started, stopped when it ends."""
    apps: list[Queued] = []
    yield apps
    for app in apps:
        app.stop()


@pytest.fixture
def smtp_server_factory() -> Iterator[Callable[..., SmtpServer]]:
    servers: list[SmtpServer] = []

    def start(handler: Any = None, **smtp_kwargs: Any) -> SmtpServer:
        server = SmtpServer(handler if handler is not None else RecordingHandler(), **smtp_kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_server(smtp_server_factory: Callable[..., SmtpServer]) -> SmtpServer:
    return smtp_server_factory()


@pytest.fixture
def ingress_factory(make_settings: Callable[..., GatewaySettings]) -> Iterator[IngressFactory]:
    """Start SMTP ingresses on free loopback ports; every one is stopped when the test ends."""
    factory = IngressFactory(make_settings)
    yield factory
    factory.stop_all()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One private PostgreSQL cluster for the whole run, started on first use; never skipped (``make test``
    installs PostgreSQL)."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """A fresh, empty database of the private cluster, with the store's schema applied."""
    return postgres.create_store()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """Each store the gateway runs on: an embedded SQLite file, and a PostgreSQL database with its schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store-{time.monotonic_ns()}.sqlite3"
    return request.getfixturevalue("postgres_url")
