"""Delivery workers and the SMTP connection pool they share: more workers than pooled connections take turns on
the connections, as request threads do, rather than some of them holding one for good and the others failing."""

from __future__ import annotations

import threading
import time

from crash_support import HoldingHandler
from ingress_support import wait_until
from queue_support import queued_app

from mail_gateway.queue import worker


def test_more_workers_than_pooled_connections_deliver_everything_first_time(make_settings,
                                                                            smtp_server_factory) -> None:
    upstream = smtp_server_factory(HoldingHandler(delay=0.05))
    queued = queued_app(make_settings, **upstream.queued_settings(), gateway_queue_workers=4, mail_pool_size=2,
                        mail_timeout=2)
    try:
        ids = [queued.send()["id"] for _ in range(8)]
        for message_id in ids:
            found = queued.wait_status(message_id, "delivered", "deferred", timeout=20)
            assert [event["type"] for event in found["events"]] == ["delivered"], found["events"]
    finally:
        queued.stop()
    assert len(upstream.messages) == 8


def test_the_pool_has_a_connection_for_each_worker_unless_mail_pool_size_says_otherwise(make_settings,
                                                                                        smtp_server_factory) -> None:
    for pool, at_once in (({}, 12), ({"mail_pool_size": 3}, 3)):
        handler = HoldingHandler()
        handler.hold.set()
        upstream = smtp_server_factory(handler)
        queued = queued_app(make_settings, **upstream.queued_settings(), gateway_queue_workers=12, **pool)
        try:
            ids = [queued.send()["id"] for _ in range(12)]
            wait_until(lambda: handler.holding == at_once, f"{at_once} deliveries at once")  # noqa: B023
            time.sleep(0.3)
            assert handler.holding == at_once  # the others wait their turn for a connection
            handler.hold.clear()
            for message_id in ids:
                assert queued.wait_status(message_id, "delivered")["recipients"][0]["attempts"] == 1
        finally:
            handler.hold.clear()
            queued.stop()


def test_stopping_idle_workers_wakes_every_wait_however_long(make_settings, queued_apps, monkeypatch) -> None:
    # Each idle thread waits long: the claiming thread the poll interval, the delivery threads for a claim (a wait
    # that can also outlast its timeout: CPython 3.11's SimpleQueue.get(timeout) may wait until the next put when
    # several threads wait on one queue). Stopping wakes each at once, rather than waiting for it to look.
    monkeypatch.setattr(worker, "IDLE_POLL", 30.0)
    queued = queued_app(make_settings, mail_backend="memory", gateway_queue_poll_interval=30, gateway_queue_workers=3)
    queued_apps.append(queued)
    queued.wait_status(queued.send()["id"], "delivered")  # every thread is past its first round, and idle
    began = time.monotonic()
    queued.stop()
    assert time.monotonic() - began < 5  # a bound far below the waits, not a speed measurement
    left = [thread.name for thread in threading.enumerate() if thread.name.startswith(("queue-", "store-"))]
    assert left == []
