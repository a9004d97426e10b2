"""One retry authority in queued mode: the queue's backoff (GATEWAY_QUEUE_BACKOFF_*) decides when a message is
tried again, and each claim is one attempt upstream; MAIL_RETRY_* belong to direct delivery only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from ingress_support import wait_until
from queue_support import MESSAGE, Queued
from smtp_server import HOST, RecordingHandler

from mail_gateway import create_app
from mail_gateway.errors import ConfigurationError
from mail_gateway.settings import load_settings

ATTEMPT_EVENTS = {"deferred", "delivered", "bounced", "unknown", "failed"}


@dataclass
class Greylisting(RecordingHandler):
    """Answers ``451`` at RCPT the first ``refusals`` times, as a greylisting server does, then accepts; counts
    every transaction (each MAIL command) it sees."""

    refusals: int = 3
    transactions: int = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.transactions += 1
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refusals > 0:
            self.refusals -= 1
            return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def attempts_in(found: dict[str, Any]) -> list[tuple[str, int | None]]:
    return [(e["type"], e["code"]) for e in found["events"] if e["type"] in ATTEMPT_EVENTS]


def deliver_retrying_by_hand(queued: Queued, message_id: str) -> dict[str, Any]:
    """Wait for each recorded attempt and make the message due again at once, until it is delivered."""
    seen = 0
    found: dict[str, Any] = {}

    def progressed() -> bool:
        found.update(queued.status(message_id))
        return found["status"] == "delivered" or (found["status"] == "deferred" and len(attempts_in(found)) > seen)

    for _ in range(8):  # a bound: the handler refuses three times
        wait_until(progressed, f"message {message_id} has its next attempt recorded (last: {found.get('status')})")
        if found["status"] == "delivered":
            return found
        seen = len(attempts_in(found))
        response = queued.client.post(f"/v1/messages/{message_id}/retry")
        assert response.status_code == 202, response.get_data(as_text=True)
    raise AssertionError(f"still not delivered after {seen} attempts: {attempts_in(found)}")


def test_with_default_settings_each_queue_attempt_is_one_upstream_transaction(make_settings, smtp_server_factory,
                                                                             queued_apps, tmp_path) -> None:
    """Default settings, retry settings untouched: GATEWAY_QUEUE_BACKOFF_* and MAIL_RETRY_* keep their defaults.

    The queue's first retry would come 300 s later, too long for a test, so between attempts the test asks for a
    retry now (``POST /v1/messages/{id}/retry``, as an operator does); that changes when the next attempt comes,
    not who retries or how often. The upstream greylists at RCPT (451 to the recipient), so no "slow down" pauses
    claiming, which the retry request does not lift. Four queue attempts must be four upstream transactions: no
    second, hidden retry loop inside an attempt."""
    handler = Greylisting(refusals=3)
    server = smtp_server_factory(handler)
    app = create_app(make_settings(gateway_delivery="queued", gateway_store_url=f"sqlite:///{tmp_path}/store.db",
                                   mail_backend="smtp", mail_server=HOST, mail_port=server.port))
    queued = Queued(app, None)
    queued_apps.append(queued)
    queued.start_workers()
    found = deliver_retrying_by_hand(queued, queued.send()["id"])
    assert attempts_in(found) == [("deferred", 451)] * 3 + [("delivered", 250)]
    assert found["recipients"][0]["attempts"] == 4
    assert handler.transactions == 4 and len(handler.messages) == 1


@pytest.mark.parametrize("name", ["MAIL_RETRY_ATTEMPTS", "MAIL_RETRY_BACKOFF", "MAIL_RETRY_DEADLINE"])
def test_mail_retry_settings_are_refused_with_queued_delivery(monkeypatch, name) -> None:
    monkeypatch.setenv("GATEWAY_DELIVERY", "queued")
    monkeypatch.setenv(name, "2")
    with pytest.raises(ConfigurationError) as raised:
        load_settings(_env_file=None)
    message = str(raised.value)
    assert name in message and "GATEWAY_QUEUE_BACKOFF_MIN" in message and "\n" not in message


def test_mail_retry_settings_still_apply_to_direct_delivery(monkeypatch) -> None:
    monkeypatch.setenv("MAIL_RETRY_ATTEMPTS", "5")
    assert load_settings(_env_file=None).mail_retry_attempts == 5


def test_an_attempt_still_fails_over_to_the_next_upstream_at_once(make_settings, smtp_server_factory, queued_apps,
                                                                 tmp_path) -> None:
    """One attempt is one pass over the upstreams: the second is tried in the same attempt, without waiting."""
    first, second = Greylisting(refusals=100), Greylisting(refusals=0)
    urls = " ".join(f"smtp://{HOST}:{smtp_server_factory(h).port}" for h in (first, second))
    app = create_app(make_settings(gateway_delivery="queued", gateway_store_url=f"sqlite:///{tmp_path}/store.db",
                                   mail_url=f"failover({urls})"))
    queued = Queued(app, None)
    queued_apps.append(queued)
    queued.start_workers()
    found = queued.wait_status(queued.send(MESSAGE)["id"], "delivered")
    assert attempts_in(found) == [("delivered", 250)]
    assert (first.transactions, second.transactions, len(second.messages)) == (1, 1, 1)
