"""Writes held back until the end of a request, to be committed together with what the request records.

A queued request with an ``Idempotency-Key`` must store its messages and its response in one transaction: then a
crash can leave either both or neither, and a replay never enqueues twice. Code that stores messages calls
``write_or_defer``; inside ``deferred_writes()`` the change is kept for the caller to commit with its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy.engine import Connection

Work = Callable[[Connection], Any]
_deferred: ContextVar[list[Work] | None] = ContextVar("mail_gateway_deferred_writes", default=None)


@contextmanager
def deferred_writes() -> Iterator[list[Work]]:
    held: list[Work] = []
    token = _deferred.set(held)
    try:
        yield held
    finally:
        _deferred.reset(token)


def defer(work: Work) -> bool:
    """Keep ``work`` for the enclosing ``deferred_writes()``; False when there is none (write it now)."""
    held = _deferred.get()
    if held is None:
        return False
    held.append(work)
    return True
