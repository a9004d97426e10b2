"""Deliver over SMTP: pooled connections, safe retries, verified TLS, and failover between upstreams.

One ``SmtpBackend`` serves every thread that sends. Each upstream has a bounded ``ConnectionPool``; a delivery
borrows a connection and returns it, while ``hold()`` keeps the connections this thread borrows until the
block ends. The result (or error) says which upstream answered and after how many attempts, for the one
log line the send path writes per delivery.
"""

from __future__ import annotations

import smtplib
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mail_gateway.backends.base import EmailBackend, OnOutcome
from mail_gateway.backends.smtp import connect, transaction
from mail_gateway.backends.smtp.pool import ConnectionPool, PooledConnection
from mail_gateway.backends.smtp.retry import RetryPolicy
from mail_gateway.backends.smtp.tls import client_tls_context
from mail_gateway.backends.smtp.upstreams import Member, UpstreamSet
from mail_gateway.errors import ConnectionSetupError, DeliveryError, TransientDeliveryError
from mail_gateway.mail.rendering import RenderedMessage
from mail_gateway.mail.result import SendResult
from mail_gateway.settings.mail_url import Upstream

if TYPE_CHECKING:
    from mail_gateway.settings.smtp import SmtpSettings


def _hung_up(exc: TransientDeliveryError) -> bool:
    """A connection the server closed (not one that timed out) before the message's final dot."""
    cause = exc.__cause__
    if exc.smtp_code is not None or not isinstance(cause, (smtplib.SMTPServerDisconnected, ConnectionError)):
        return False
    # smtplib reports a read timeout as SMTPServerDisconnected too; the timeout is what it was handling.
    return not isinstance(cause, TimeoutError) and not isinstance(cause.__context__, TimeoutError)


class SmtpBackend(EmailBackend):
    name = "smtp"
    settings: SmtpSettings

    def __init__(self, settings: SmtpSettings) -> None:
        """``settings``: the SMTP subject (``GatewaySettings.smtp``), derived for the delivery workers when queued."""
        super().__init__(settings)
        strategy, upstreams = settings.smtp_upstreams()
        # Built even without TLS so that unreadable certificate files fail at start-up.
        self._context = client_tls_context(settings)
        self._timeout = settings.mail_timeout
        self.upstreams = UpstreamSet(strategy, [Member(u, self._pool_for(u)) for u in upstreams],
                                     settings.mail_upstream_rest)
        self.retry_policy = RetryPolicy(settings.mail_retry_attempts, settings.mail_retry_backoff,
                                        settings.mail_retry_deadline)
        # The connections a thread holds inside hold(), one per upstream.
        self._local = threading.local()

    def _pool_for(self, upstream: Upstream) -> ConnectionPool:
        settings = self.settings
        return ConnectionPool(lambda: self.connect(upstream), name=upstream.name, size=settings.mail_pool_size,
                              idle_timeout=settings.mail_pool_idle_timeout,
                              max_messages=settings.mail_pool_max_messages, wait_timeout=settings.mail_timeout,
                              batch_size=settings.pool_batch_connections)

    def connect(self, upstream: Upstream, found: dict[str, Any] | None = None) -> smtplib.SMTP:
        """A new, fully set-up connection to ``upstream`` (outside the pool)."""
        return connect.connect(upstream, self._timeout, self._context, found)

    # -- connections held by the current thread ------------------------------------------------------

    @property
    def _pins(self) -> dict[Member, PooledConnection] | None:
        return getattr(self._local, "pins", None)

    @contextmanager
    def hold(self) -> Iterator[None]:
        if self._pins is not None:  # an outer hold() of this thread already keeps them
            yield
            return
        self._local.pins = {}  # connections are borrowed when first needed, so failover still applies
        try:
            yield
        finally:
            pins, self._local.pins = self._pins, None
            for member, conn in (pins or {}).items():
                member.pool.give_back(conn)

    def dial(self) -> None:
        """Inside ``hold()``: borrow this thread's first connection now, tried and failed over as a delivery is,
        so an upstream that cannot be reached raises here rather than at the first message."""
        pins = self._pins
        if pins is None or pins:
            return  # outside hold() nothing would keep it; inside, a held connection already answers
        self.upstreams.attempts(self.retry_policy, lambda member, _: pins.update({member: member.pool.borrow()}))

    @contextmanager
    def _lease(self, member: Member) -> Iterator[PooledConnection]:
        pins = self._pins
        conn = pins.pop(member, None) if pins is not None else None
        if conn is not None and not member.pool.alive(conn):
            transaction.quit_quietly(conn.smtp)  # closed, so giving it back only frees its slot
            member.pool.give_back(conn)
            conn = None
        if conn is None:
            conn = member.pool.borrow(batch=getattr(self._local, "batch", False))
        try:
            yield conn
        except BaseException as exc:
            if not isinstance(exc, DeliveryError):
                conn.smtp.close()  # the transaction's state is unknown: never reuse this connection
            raise
        finally:
            conn.messages += 1
            if pins is not None and conn.smtp.sock is not None and conn.messages < member.pool.max_messages:
                pins[member] = conn
            else:
                member.pool.give_back(conn)

    # -- delivery --------------------------------------------------------------------------------------

    def deliver(self, message: RenderedMessage) -> SendResult:
        def attempt(member: Member, number: int) -> SendResult:
            try:
                return replace(self._transaction(member, message), attempts=number)
            except DeliveryError as exc:
                exc.attempts = number
                raise

        return self.upstreams.attempts(self.retry_policy, attempt)

    def _transaction(self, member: Member, message: RenderedMessage) -> SendResult:
        for _ in range(member.pool.size):
            with self._lease(member) as conn:
                reused = conn.messages > 0
                try:
                    return transaction.send_transaction(conn.smtp, message, member.upstream.name)
                except TransientDeliveryError as exc:
                    if not (reused and _hung_up(exc)):
                        raise
            # The server closed this idle connection just as it was reused: nothing reached it, so a fresh
            # connection is tried at once instead of spending a retry and its backoff.
        with self._lease(member) as conn:
            return transaction.send_transaction(conn.smtp, message, member.upstream.name)

    def deliver_all(self, messages: Sequence[RenderedMessage],
                    on_outcome: OnOutcome | None = None) -> list[SendResult | DeliveryError]:
        """Deliver over up to ``MAIL_POOL_BATCH_CONNECTIONS`` connections at once (half the pool by default, so
        single sends keep the rest); results come back in order."""
        if len(messages) <= 1 or self._pins is not None:
            # One message is a single send; a thread that holds connections would compete with its own workers.
            return super().deliver_all(messages, on_outcome)
        workers = min(len(messages), self.settings.pool_batch_connections)
        outcomes: list[SendResult | DeliveryError | None] = [None] * len(messages)
        queue = iter(enumerate(messages))
        lock = threading.Lock()

        def work() -> None:
            self._local.batch = True  # what this thread borrows counts against the batches' share
            try:
                with self.hold():
                    while True:
                        with lock:
                            item = next(queue, None)
                        if item is None:
                            return
                        index, message = item
                        try:
                            outcomes[index] = self.deliver(message)
                        except DeliveryError as exc:
                            outcomes[index] = exc
                        if on_outcome is not None:
                            on_outcome(index, outcomes[index])  # type: ignore[arg-type]
            finally:
                self._local.batch = False

        if workers == 1:
            work()
            return outcomes  # type: ignore[return-value]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smtp-batch") as executor:
            for future in [executor.submit(work) for _ in range(workers)]:
                future.result()  # re-raise what is not a delivery outcome
        return outcomes  # type: ignore[return-value]

    # -- readiness and lifecycle -----------------------------------------------------------------------

    def check(self) -> None:
        """Ready when at least one upstream connects, says EHLO, does STARTTLS/login and answers NOOP."""
        errors: list[DeliveryError] = []
        for member in self.upstreams.members:
            try:
                conn = self.connect(member.upstream)
            except DeliveryError as exc:
                errors.append(exc)
                continue
            try:
                if transaction.noop_ok(conn):
                    return
                errors.append(ConnectionSetupError(
                    f"{member.upstream.name}: did not answer NOOP", backend=self.name, upstream=member.upstream.name))
            finally:
                transaction.quit_quietly(conn)
        first = errors[0]
        raise type(first)("; ".join(str(e) for e in errors), backend=self.name, smtp_code=first.smtp_code,
                          upstream=first.upstream, smtp_text=first.smtp_text,
                          client_detail=first.client_detail) from first

    def close(self) -> None:
        """Say QUIT on every pooled connection (the gateway is stopping, or a test is done with the backend)."""
        self.upstreams.close()

    def __repr__(self) -> str:
        names = " ".join(m.upstream.name for m in self.upstreams.members)
        return f"<{type(self).__name__} {self.upstreams.strategy} {names}>"
