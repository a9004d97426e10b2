"""The one backoff of the gateway: how long to wait before retrying, for the SMTP backend's retries in direct mode
(``MAIL_RETRY_BACKOFF``), the queue's (``GATEWAY_QUEUE_BACKOFF_*``) and the webhooks'."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    minimum: float
    maximum: float

    def delay(self, attempts: int) -> float:
        """Seconds before retry number ``attempts`` (1: the first retry): exponential from ``minimum``, doubled per
        retry, with up to half again of random jitter so that retries spread out; always between ``minimum`` and
        ``maximum``."""
        base = self.minimum * 2 ** min(max(attempts - 1, 0), 60)
        return min(self.maximum, max(self.minimum, base * random.uniform(1.0, 1.5)))
