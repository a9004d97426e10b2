"""How fast a worker process sends: ``MAIL_RATE_LIMIT`` (a token bucket) and a pause after an upstream's
"slow down" (421/451), growing while the upstream keeps asking and ending at its next success."""

from __future__ import annotations

import threading
import time

from mail_gateway.backends.backoff import Backoff


class Pacing:
    def __init__(self, rate: float | None, backoff: Backoff) -> None:
        self.rate = rate
        self.backoff = backoff
        # A burst of a tenth of a second's messages (at least one) above the rate: any one second carries at most
        # 1.1 times the rate, and a rate below 10 a second is never exceeded by more than one message.
        self._capacity = max(1.0, (rate or 0) / 10)
        self._tokens = self._capacity
        self._refilled = time.monotonic()
        self._paused_until = 0.0
        self._slow_downs = 0
        self._lock = threading.Lock()

    def allowance(self, wanted: int) -> tuple[int, float]:
        """How many messages may be claimed now, and if none, how long to wait before asking again."""
        now = time.monotonic()
        with self._lock:
            if now < self._paused_until:
                return 0, self._paused_until - now
            if self.rate is None:
                return wanted, 0.0
            self._tokens = min(self._capacity, self._tokens + (now - self._refilled) * self.rate)
            self._refilled = now
            granted = min(wanted, int(self._tokens))
            self._tokens -= granted
            return granted, 0.0 if granted else (1 - self._tokens) / self.rate

    def slow_down(self) -> float:
        """The upstream asked for fewer messages: claim none for a while; how long."""
        with self._lock:
            self._slow_downs += 1
            pause = self.backoff.delay(self._slow_downs)
            self._paused_until = max(self._paused_until, time.monotonic() + pause)
            return pause

    def succeeded(self) -> None:
        with self._lock:
            self._slow_downs = 0
