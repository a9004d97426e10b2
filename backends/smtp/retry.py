"""Retry a delivery only when a later attempt is safe and may work.

Safe means the failure happened before the server could have accepted the message: the backends raise
``TransientDeliveryError`` only for such failures (4xx replies, refused or reset connections, timeouts
before the final dot). ``DeliveryOutcomeUnknownError`` (the reply to the final dot was lost) and every
``PermanentDeliveryError`` (5xx) are raised at once, never retried.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from mail_gateway.backends.backoff import Backoff
from mail_gateway.errors import TransientDeliveryError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int  # in all, the first included
    backoff: float  # seconds before the first retry; doubled for each one after it
    deadline: float  # seconds all attempts of one message may take together
    max_delay: float = 30.0

    def delay(self, failures: int) -> float:
        """The gateway's one backoff (the queue's too): ``backoff`` doubled per retry, jittered, at most
        ``max_delay``."""
        return Backoff(self.backoff, self.max_delay).delay(failures)


def with_retries(attempt: Callable[[int], T], policy: RetryPolicy, *,
                 needs_backoff: Callable[[int], bool] = lambda failed_attempt: True,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """Call ``attempt(n)`` for n = 1, 2, ... until it returns, retrying ``TransientDeliveryError``.

    ``needs_backoff(n)`` says whether to wait after failed attempt n; failover answers False while an
    untried upstream remains, since waiting would not help that one.
    """
    started = time.monotonic()
    waited = 0.0
    number = 1
    while True:
        try:
            return attempt(number)
        except TransientDeliveryError:
            if number >= policy.attempts:
                raise
            delay = policy.delay(number) if needs_backoff(number) else 0.0
            # The waits count even when ``sleep`` returns early (an interrupted or injected sleep).
            spent = max(time.monotonic() - started, waited)
            if spent + delay >= policy.deadline:
                raise
            sleep(delay)
            waited += delay
            number += 1
