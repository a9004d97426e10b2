"""Choose the SMTP upstream for each attempt: one, ``failover`` (in order) or ``roundrobin`` (in turn).

An upstream that failed to connect rests for ``MAIL_UPSTREAM_REST`` seconds: the others are tried
first. When every upstream rests they are all tried anyway, soonest-recovered first, since refusing to
try would turn a brief outage into a certain failure.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from mail_gateway.backends.smtp.pool import ConnectionPool
from mail_gateway.backends.smtp.retry import RetryPolicy, with_retries
from mail_gateway.errors import ConnectionSetupError
from mail_gateway.settings.mail_url import Upstream

T = TypeVar("T")


@dataclass(eq=False)
class Member:
    upstream: Upstream
    pool: ConnectionPool
    rested_until: float = 0.0


class UpstreamSet:
    def __init__(self, strategy: str, members: Sequence[Member], rest_seconds: float) -> None:
        self.strategy = strategy
        self.members = tuple(members)
        self.rest_seconds = rest_seconds
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def order(self) -> list[Member]:
        """The members to try, best first, for one delivery."""
        now = time.monotonic()
        members = list(self.members)
        if self.strategy == "roundrobin" and len(members) > 1:
            with self._lock:
                start = next(self._turn) % len(members)
            members = members[start:] + members[:start]
        ready = [m for m in members if m.rested_until <= now]
        resting = sorted((m for m in members if m.rested_until > now), key=lambda m: m.rested_until)
        return ready + resting

    def attempts(self, policy: RetryPolicy, act: Callable[[Member, int], T]) -> T:
        """``act(member, attempt number)`` with ``policy``'s retries, over one order of the upstreams: backing off
        only once every upstream has had its turn (the next one may be fine right now); one that could not be
        connected to rests."""
        order = self.order()

        def attempt(number: int) -> T:
            member = order[(number - 1) % len(order)]
            try:
                result = act(member, number)
            except ConnectionSetupError:
                self.failed(member)
                raise
            self.succeeded(member)
            return result

        return with_retries(attempt, policy, needs_backoff=lambda failed: failed % len(order) == 0)

    def failed(self, member: Member) -> None:
        if len(self.members) > 1:
            member.rested_until = time.monotonic() + self.rest_seconds

    def succeeded(self, member: Member) -> None:
        member.rested_until = 0.0

    def close(self) -> None:
        for member in self.members:
            member.pool.close()
