"""The ``mail_outbox`` pytest fixture, for projects that send mail through the gateway as a library.

Installed with the package and loaded by pytest through the ``pytest11`` entry point, so a test only asks for
it::

    def test_welcome_mail(client, mail_outbox):
        client.post("/signup", data={"email": "ann@example.com"})
        mail_outbox.assert_sent(to="ann@example.com", subject="Welcome")

For the length of the test every gateway sender in the process delivers to one memory backend, whatever the
settings say and whenever its app was built (during the test, before it, at import), and ``MAIL_BACKEND=memory``
is set, so nothing leaves the machine.

pytest loads this module in every run of every project that has the gateway installed, so it imports nothing
of the gateway (nor Flask) until a test asks for the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mail_gateway.testing.captured import CapturedMail


@pytest.fixture
def mail_outbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[CapturedMail]:
    """An empty outbox that every gateway sender delivers to during the test."""
    from mail_gateway.backends.memory import MemoryBackend
    from mail_gateway.backends.registry import backend_override
    from mail_gateway.settings import GatewaySettings
    from mail_gateway.testing.captured import CapturedMail

    monkeypatch.setenv("MAIL_BACKEND", "memory")
    backend = MemoryBackend(GatewaySettings(_env_file=None, gateway_env="testing", mail_backend="memory").memory)
    with backend_override(backend):
        yield CapturedMail(backend, monkeypatch)
