"""What a ``Sender`` is handed and calls, each described here by what the sender needs of it: the spool of queued
delivery, the store transaction of the request a send is part of, and the templates a request may name. The
implementations live on higher floors (``mail_gateway.queue``, ``mail_gateway.http``, ``mail_gateway.templating``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from mail_gateway.mail.rendering import RenderedMessage
from mail_gateway.mail.request import MessageRequest
from mail_gateway.mail.result import QueuedResult


class Transaction(Protocol):
    """The store transaction a send is part of, handed down by its caller: a keyed HTTP request's
    (``http.keyring.KeyedRequest``), which commits the messages it stores with its response, so a crash leaves
    both or neither and a replay never stores them twice. Without one, a send's messages are stored at once."""

    def join(self, work: Callable[[Any], object]) -> None:
        """Have ``work(conn)`` run in this transaction when it commits."""


class Spool(Protocol):
    """Durable storage for queued delivery (``mail_gateway.queue.spool``)."""

    def put(self, messages: Sequence[RenderedMessage], *, via: str, send_at: Sequence[float | None],
            owner: str | None = None, transaction: Transaction | None = None) -> list[QueuedResult]:
        """Store every message, ``owner``'s, for its recipients not suppressed (a result names them; one with none
        left is not stored), in one transaction (``transaction``, if given), or raise ``StoreUnavailableError``."""


class Templates(Protocol):
    """Renders a request's template into it (``mail_gateway.templating.library.TemplateLibrary``)."""

    def apply(self, request: MessageRequest) -> MessageRequest:
        """The request with its subject, text and html rendered; ``InvalidMessageError`` when they cannot be."""
