"""Helpers of the queued-delivery tests: an app with its workers on a real upstream, waiting on statuses."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flask import Flask
from ingress_support import wait_until

from mail_gateway import MailGateway, create_app
from mail_gateway.queue.worker import DeliveryWorkers

# Retries milliseconds apart, claims released a second after a worker dies: fault tests stay fast.
FAST = {"gateway_delivery": "queued", "gateway_queue_backoff_min": 0.05, "gateway_queue_backoff_max": 0.2,
        "gateway_queue_lease": 1.0}
MESSAGE: dict[str, Any] = {"from": "app@example.com", "to": ["friend@example.com"], "subject": "Queued",
                           "text": "Kept, then delivered."}


@dataclass
class Queued:
    app: Flask
    workers: DeliveryWorkers | None

    @property
    def client(self) -> Any:
        return self.app.test_client()

    def send(self, payload: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
        response = self.client.post("/v1/messages", json=payload or MESSAGE, headers=headers)
        assert response.status_code == 202, response.get_data(as_text=True)
        return response.get_json()

    def status(self, message_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/messages/{message_id}")
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def wait_status(self, message_id: str, *wanted: str, timeout: float = 15) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def reached() -> bool:
            found.update(self.status(message_id))
            return found["status"] in wanted

        wait_until(reached, f"message {message_id} is {' or '.join(wanted)} (last: {found.get('status')})", timeout)
        return found

    def start_workers(self) -> DeliveryWorkers:
        state = MailGateway.state(self.app)
        self.workers = DeliveryWorkers(state.sender, state.store, wakeup=state.sender.spool.arrived).start()
        return self.workers

    def stop(self) -> None:
        if self.workers is not None:
            self.workers.stop(timeout=10)
            self.workers = None
        MailGateway.state(self.app).sender.close()  # the pool says QUIT: the upstream's session ends now


def queued_app(make_settings: Any, *, workers: bool = True, **values: Any) -> Queued:
    values.setdefault("gateway_store_url", f"sqlite:///store-{time.monotonic_ns()}.sqlite3")
    queued = Queued(create_app(make_settings(**{**FAST, **values})), None)
    if workers:
        queued.start_workers()
    return queued
