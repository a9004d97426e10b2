"""Prometheus metrics (``prometheus_client``), every name prefixed ``mail_gateway_``.

Counters and the latency histogram count what this process did; the queue's gauges (messages by state, age of
the oldest pending message) are read from the store when scraped, so every process shows the whole queue.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from mail_gateway.errors import StoreUnavailableError
from mail_gateway.store import messages
from mail_gateway.store.claims import Attempt
from mail_gateway.store.database import Store
from mail_gateway.store.status import MESSAGE_STATES

DELIVERIES = Counter("mail_gateway_deliveries", "Recipient outcomes of delivery attempts, by outcome and upstream",
                     ["outcome", "upstream"])
HTTP_REQUESTS = Counter("mail_gateway_http_requests", "HTTP requests by route, method and status",
                        ["route", "method", "status"])
HTTP_LATENCY = Histogram("mail_gateway_http_request_duration_seconds", "HTTP request latency by route", ["route"],
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


def count_attempt(attempt: Attempt) -> None:
    for update in attempt.updates:
        DELIVERIES.labels(update.event, attempt.upstream or "-").inc()


# Label values come from closed sets only: a method or status outside them is counted as "other", so a client,
# with or without a key, cannot add series (each kept for the life of the process, and in every scrape) by
# inventing methods. The route is the matched rule's template or "unmatched", never the path asked for.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"})
STATUSES = frozenset(str(status.value) for status in HTTPStatus)
OTHER = "other"

# The labelled children of each route, method and status, looked up once: ``labels()`` takes a lock and builds
# its key on every call, a cost paid by every HTTP request. Bounded, as the labels are.
_REQUEST_CHILDREN: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def count_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request; ``route`` is the matched rule's template (or "unmatched")."""
    key = (route, method if method in METHODS else OTHER, code if (code := str(status)) in STATUSES else OTHER)
    children = _REQUEST_CHILDREN.get(key)
    if children is None:
        children = _REQUEST_CHILDREN.setdefault(key, (HTTP_REQUESTS.labels(*key), HTTP_LATENCY.labels(route)))
    children[0].inc()
    children[1].observe(seconds)


class QueueCollector(Collector):
    """Messages by state and the age of the oldest pending one, read from the store at each scrape."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        states = GaugeMetricFamily("mail_gateway_messages", "Messages in the store by status", labels=["status"])
        oldest = GaugeMetricFamily("mail_gateway_oldest_pending_age_seconds",
                                   "Age of the oldest message with a pending recipient (0 when none)")
        up = GaugeMetricFamily("mail_gateway_store_up", "1 when the store answered this scrape, else 0")
        try:
            summary = self.store.read(messages.pending_summary)
        except StoreUnavailableError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for state in MESSAGE_STATES:
            states.add_metric([state], summary["counts"].get(state, 0))
        first = summary["oldest_pending"]
        oldest.add_metric([], max(time.time() - first, 0.0) if first is not None else 0.0)
        yield from (states, oldest, up)


def registry_for(store: Store | None) -> CollectorRegistry:
    """The process's counters, plus the queue's gauges when there is a queue. Under ``serve --workers N`` the
    counters are those of every worker process, summed from their files (prometheus_client's multiprocess mode),
    since a scrape reaches one process at random."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        if store is not None:
            registry.register(QueueCollector(store))
        return registry
    if store is None:
        return REGISTRY
    registry = CollectorRegistry()
    for collector in (DELIVERIES, HTTP_REQUESTS, HTTP_LATENCY, QueueCollector(store)):
        registry.register(collector)
    return registry
