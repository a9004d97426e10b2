"""Finding 2 of the hostile-client review: a batch never holds the whole SMTP pool, so single sends keep getting
connections while batches run. Against a real aiosmtpd server that takes its time over every message."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import pytest
from ingress_support import wait_until
from smtp_server import RecordingHandler

from mail_gateway import create_app
from mail_gateway.errors import ConfigurationError
from mail_gateway.settings import load_settings

DATA_SECONDS = 0.4


@dataclass
class SlowHandler(RecordingHandler):
    """Takes DATA_SECONDS over every message; counts the messages being received at once."""

    in_data: int = 0
    most_in_data: int = 0

    async def handle_DATA(self, server, session, envelope):
        self.in_data += 1
        self.most_in_data = max(self.most_in_data, self.in_data)
        try:
            await asyncio.sleep(DATA_SECONDS)
            return await super().handle_DATA(server, session, envelope)
        finally:
            self.in_data -= 1


def _message(subject: str) -> dict:
    return {"from": "app@example.com", "to": ["a@example.com"], "subject": subject, "text": "Hi"}


def test_a_single_send_gets_a_connection_while_a_batch_runs(smtp_server_factory, make_settings) -> None:
    server = smtp_server_factory(SlowHandler())
    # Every pooled connection busy for MAIL_TIMEOUT means 503; one attempt, so a retry cannot hide the wait.
    app = create_app(make_settings(**server.settings(mail_pool_size=4, mail_timeout=1.0, mail_retry_attempts=1)))
    batch_answer: list = []

    def batch() -> None:
        response = app.test_client().post("/v1/messages/batch",
                                          json={"messages": [_message(f"b{i}") for i in range(24)]})
        batch_answer.append(response)

    runner = threading.Thread(target=batch)
    runner.start()
    try:
        wait_until(lambda: server.handler.in_data >= 2, "the batch is sending")
        single = app.test_client().post("/v1/messages", json=_message("single"))
        assert single.status_code == 202, single.get_json()
        assert batch_answer == [], "the single send went out while the batch was still running"
    finally:
        runner.join(timeout=60)
    results = batch_answer[0].get_json()["results"]
    assert [r["status"] for r in results] == ["accepted"] * 24
    assert server.handler.most_in_data <= 3  # the batch's half of the pool, and the single send


def test_the_batch_share_is_a_setting_and_cannot_be_the_whole_pool(make_settings) -> None:
    assert make_settings(mail_pool_size=8).pool_batch_connections == 4
    assert make_settings(mail_pool_size=8, mail_pool_batch_connections=6).pool_batch_connections == 6
    assert make_settings(mail_pool_size=1).pool_batch_connections == 1
    with pytest.raises(ConfigurationError, match="MAIL_POOL_BATCH_CONNECTIONS"):
        load_settings(mail_pool_size=4, mail_pool_batch_connections=4)
