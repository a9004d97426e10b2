"""Delivery workers and the SMTP connection pool they share: more workers than pooled connections take turns on
the connections, as request threads do, rather than some of them holding one for good and the others failing."""

from __future__ import annotations

from crash_support import HoldingHandler
from queue_support import queued_app


def test_more_workers_than_pooled_connections_deliver_everything_first_time(make_settings,
                                                                            smtp_server_factory) -> None:
    upstream = smtp_server_factory(HoldingHandler(delay=0.05))
    queued = queued_app(make_settings, **upstream.settings(), gateway_queue_workers=4, mail_pool_size=2,
                        mail_timeout=2)
    try:
        ids = [queued.send()["id"] for _ in range(8)]
        for message_id in ids:
            found = queued.wait_status(message_id, "delivered", "deferred", timeout=20)
            assert [event["type"] for event in found["events"]] == ["delivered"], found["events"]
    finally:
        queued.stop()
    assert len(upstream.messages) == 8
