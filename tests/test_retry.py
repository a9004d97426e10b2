"""The retry rule on its own: which failures are retried, how often, and within what deadline."""

from __future__ import annotations

import random

import pytest

from mail_gateway.backends.backoff import Backoff
from mail_gateway.backends.smtp.retry import RetryPolicy, with_retries
from mail_gateway.errors import DeliveryOutcomeUnknownError, PermanentDeliveryError, TransientDeliveryError


def failing(errors: list[Exception]):
    calls: list[int] = []

    def attempt(number: int) -> str:
        calls.append(number)
        if errors:
            raise errors.pop(0)
        return "sent"

    return attempt, calls


def transient() -> TransientDeliveryError:
    return TransientDeliveryError("451 later", backend="smtp")


def test_transient_failures_are_retried_until_one_succeeds() -> None:
    attempt, calls = failing([transient(), transient()])
    waits: list[float] = []
    assert with_retries(attempt, RetryPolicy(3, 0.1, 60), sleep=waits.append) == "sent"
    assert calls == [1, 2, 3]
    assert 0.1 <= waits[0] <= 0.15 and 0.2 <= waits[1] <= 0.3  # doubled, with up to half again of jitter


def test_attempts_are_bounded() -> None:
    attempt, calls = failing([transient() for _ in range(5)])
    with pytest.raises(TransientDeliveryError):
        with_retries(attempt, RetryPolicy(3, 0.1, 60), sleep=lambda _: None)
    assert calls == [1, 2, 3]


@pytest.mark.parametrize("error", [PermanentDeliveryError("554", backend="smtp"),
                                   DeliveryOutcomeUnknownError("lost after the dot", backend="smtp")])
def test_permanent_and_unknown_outcomes_are_never_retried(error) -> None:
    attempt, calls = failing([error])
    with pytest.raises(type(error)):
        with_retries(attempt, RetryPolicy(5, 0.1, 60), sleep=lambda _: None)
    assert calls == [1]


def test_the_deadline_stops_retries_whose_wait_would_pass_it() -> None:
    attempt, calls = failing([transient() for _ in range(5)])
    with pytest.raises(TransientDeliveryError):
        with_retries(attempt, RetryPolicy(5, 10.0, 15.5), sleep=lambda _: None)
    assert calls == [1, 2]  # the first wait (10-15 s) fits in 15.5 s; the second (20-30 s) cannot


def test_no_wait_while_another_upstream_is_untried() -> None:
    attempt, calls = failing([transient(), transient()])
    waits: list[float] = []
    with_retries(attempt, RetryPolicy(3, 1.0, 60), needs_backoff=lambda failed: failed % 2 == 0,
                 sleep=waits.append)
    assert waits[0] == 0.0 and waits[1] > 0


def test_direct_retries_and_the_queue_wait_by_one_formula(monkeypatch) -> None:
    # The random draw is pinned to each end of its range: both must give the same delays at either end.
    for end, jitter in ((0, 1.0), (1, 1.5)):
        monkeypatch.setattr(random, "uniform", lambda low, high, end=end: (low, high)[end])
        direct = [RetryPolicy(9, 0.5, 600, max_delay=3.0).delay(n) for n in range(1, 6)]
        queued = [Backoff(0.5, 3.0).delay(n) for n in range(1, 6)]
        assert direct == queued == [min(3.0, 0.5 * 2 ** (n - 1) * jitter) for n in range(1, 6)]
