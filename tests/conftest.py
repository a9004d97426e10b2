from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ingress_support import IngressFactory
from smtp_server import RecordingHandler, SmtpServer

from mail_gateway.settings import GatewaySettings


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """No MAIL_*/GATEWAY_* variable or .env file of the machine running the tests leaks into them."""
    for name in list(os.environ):
        if name.upper().startswith(("MAIL_", "GATEWAY_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def make_settings() -> Callable[..., GatewaySettings]:
    def make(**values: Any) -> GatewaySettings:
        values.setdefault("gateway_env", "testing")
        return GatewaySettings(_env_file=None, **values)

    return make


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
