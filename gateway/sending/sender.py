"""``Sender``: the ways into the send path, the message pipeline, and the one call to the backend (or the queue)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from mail_gateway.backends.base import EmailBackend
from mail_gateway.backends.keeping import keeping_for
from mail_gateway.backends.registry import active_override
from mail_gateway.errors import ConfigurationError, DeliveryError, FieldError, InvalidMessageError
from mail_gateway.mail.addresses import Address, parse_address
from mail_gateway.mail.compose import compose
from mail_gateway.mail.objects import render_email
from mail_gateway.mail.recipient_fields import message_lists, named
from mail_gateway.mail.rendering import RenderedMessage, render_raw
from mail_gateway.mail.request import MessageRequest, parse_message_request
from mail_gateway.mail.result import QueuedResult, SendResult
from mail_gateway.mail.unsubscribe import with_unsubscribe
from mail_gateway.mail.verp import with_bounce_addresses
from mail_gateway.sending.chaos import ChaosSwitch
from mail_gateway.sending.interfaces import Spool, Templates, Transaction
from mail_gateway.sending.log import Outcome, log, log_delivery, log_value
from mail_gateway.sending.pipeline import DKIM, Pipeline, StepContext
from mail_gateway.sending.suppress import SuppressionList, placed, read_with_claim, stored
from mail_gateway.settings import GatewaySettings
from mail_gateway.settings.senders import ANYONE, Client

Accepted = SendResult | QueuedResult  # delivered now, or stored for delivery later
OnOutcome = Callable[[int, Outcome], None]


def default_sender(settings: GatewaySettings) -> Address | None:
    """``MAIL_DEFAULT_SENDER`` parsed, or a ``ConfigurationError`` naming it."""
    if settings.mail_default_sender is None:
        return None
    try:
        return parse_address(settings.mail_default_sender)
    except ValueError as exc:
        raise ConfigurationError(f"MAIL_DEFAULT_SENDER is invalid ({exc}); set it to an address such as "
                                 "'App <app@example.com>'", variable="MAIL_DEFAULT_SENDER") from exc


class Sender:
    def __init__(self, settings: GatewaySettings, backend: EmailBackend, spool: Spool | None = None, *,
                 pipeline: Pipeline, templates: Templates | None = None,
                 suppressions: SuppressionList | None = None) -> None:
        self.settings = settings
        self.suppressions = suppressions  # recipients never sent to (mail_gateway.suppression)
        self._backend = backend
        self.spool = spool
        self.pipeline = pipeline  # every message passes it before it is stored or delivered
        self.templates = templates  # stored templates and the folder's (mail_gateway.templating)
        # Registered steps may not take a built-in name, so the one named dkim is the signing step.
        self._dkim: Any = next((step for step in pipeline.steps if step.name == DKIM), None)
        self.default_sender = default_sender(settings)
        self.sender_rules = settings.sender_rules  # None: anyone may send as anyone
        self.chaos = ChaosSwitch.from_settings(settings.gateway_chaos, settings.gateway_env, backend.name)

    @property
    def backend(self) -> EmailBackend:
        # A test's mail_outbox takes every sender over, also one built at import before the test began: a test
        # fixture must never let real mail out.
        override = active_override()
        return override if override is not None else self._backend

    # -- ways in -----------------------------------------------------------------------------------------

    def parse(self, payload: Any) -> MessageRequest:
        """Validate a message as the HTTP API and the CLI describe it; raises ``InvalidMessageError``."""
        request = parse_message_request(payload, default_sender=self.default_sender,
                                        max_recipients=self.settings.gateway_max_recipients,
                                        render=self.templates.apply if self.templates is not None else None)
        self.send_time(request.send_at)
        return with_unsubscribe(request, self.settings.unsubscribe, self.settings.gateway_bounce_domain)

    def send_time(self, send_at: datetime | None, field: str = "send_at") -> float | None:
        """``send_at`` as seconds since the epoch, or ``InvalidMessageError`` when it cannot be honoured."""
        if send_at is None:
            return None
        if self.spool is None:
            raise InvalidMessageError(errors=[FieldError(field, "scheduled sending needs queued delivery; the "
                                                                "gateway delivers directly (GATEWAY_DELIVERY=direct)")])
        limit = self.settings.gateway_queue_max_schedule
        if send_at.timestamp() - time.time() > limit:
            raise InvalidMessageError(errors=[FieldError(
                field, f"more than {limit:g} seconds ahead (GATEWAY_QUEUE_MAX_SCHEDULE); choose an earlier time")])
        return send_at.timestamp()

    def send(self, request: MessageRequest, *, via: str, client: Client = ANYONE,
             transaction: Transaction | None = None) -> Accepted:
        [outcome] = self.send_all([request], via=via, client=client, transaction=transaction)
        if isinstance(outcome, DeliveryError):
            raise outcome
        return outcome

    def send_all(self, requests: Sequence[MessageRequest], *, via: str, client: Client = ANYONE,
                 on_outcome: OnOutcome | None = None,
                 transaction: Transaction | None = None) -> list[Accepted | DeliveryError]:
        """Each parsed request composed and handed over in one call (``deliver``), so a backend with connections
        sends them all over the same one(s); each outcome in order."""
        send_at = [self.send_time(request.send_at) for request in requests]
        relay = None if on_outcome is None else (lambda i, out: on_outcome(i, named(out, message_lists(requests[i]))))
        outcomes = self.deliver([compose(request) for request in requests], via=via, client=client, send_at=send_at,
                                on_outcome=relay, transaction=transaction)
        return [named(outcome, message_lists(request)) for outcome, request in zip(outcomes, requests, strict=True)]

    def send_raw(self, mail_from: str, rcpt_to: Sequence[str], data: bytes, *, via: str, add_missing: bool = True,
                 client: Client = ANYONE, send_at: float | None = None, transaction: Transaction | None = None,
                 **context: object) -> Accepted:
        return self.send_rendered(render_raw(mail_from, rcpt_to, data, add_missing=add_missing), via=via,
                                  client=client, send_at=send_at, transaction=transaction, **context)

    def send_email(self, message: Any) -> Accepted:
        """A flask-mailman (or Django-style) message object, for the Flask extension's library use."""
        return self.send_rendered(render_email(message), via="library")

    def may_send_as(self, client: Client, address: str) -> bool:
        """Whether GATEWAY_ALLOWED_SENDERS lets ``client`` use ``address`` (the ingress asks at MAIL FROM)."""
        return self.sender_rules is None or self.sender_rules.allows(client, address)

    # -- the one call to the backend (or the queue) -----------------------------------------------------------

    def send_rendered(self, message: RenderedMessage, *, via: str, client: Client = ANYONE,
                      send_at: float | None = None, transaction: Transaction | None = None,
                      **context: object) -> Accepted:
        [outcome] = self.deliver([message], via=via, client=client, send_at=[send_at], transaction=transaction,
                                 **context)
        if isinstance(outcome, DeliveryError):
            raise outcome
        return outcome

    def deliver(self, messages: Sequence[RenderedMessage], *, via: str, client: Client = ANYONE,
                send_at: Sequence[float | None] = (), on_outcome: OnOutcome | None = None,
                transaction: Transaction | None = None, **context: object) -> list[Accepted | DeliveryError]:
        """Each message's outcome, in order, logged: refused by a step of the pipeline (the sender policy, say),
        else what the pipeline made of it delivered now, or with queued delivery stored for later
        (``QueuedResult``; ``StoreUnavailableError`` when none could be stored), as part of ``transaction`` when
        one is given. ``on_outcome`` hears each direct outcome as it happens."""
        if not messages:
            return []
        backend = self.backend.name
        about = StepContext(via=via, backend=backend, client=client, details=context)
        passed: list[Any] = [self.pipeline.run(message, about) for message in messages]
        allowed = [i for i, outcome in enumerate(passed) if not isinstance(outcome, DeliveryError)]
        # What the pipeline made of them: what is stored is what is sent.
        chosen = [message for message in passed if isinstance(message, RenderedMessage)]
        if self.spool is not None:  # stored, or refused as every recipient is suppressed
            times = list(send_at) or [None] * len(messages)
            results = self._store(chosen, via, [times[i] for i in allowed], client.owner, transaction)
            passed = placed(passed, allowed, results)
        for i, refusal in enumerate(passed):
            if isinstance(refusal, DeliveryError):
                log_delivery(backend, messages[i], refusal, via, None, context, self.signed_by(messages[i]))
                if on_outcome is not None:
                    on_outcome(i, refusal)
        if self.spool is None:
            relay = None if on_outcome is None else (lambda j, outcome: on_outcome(allowed[j], outcome))
            chosen = with_bounce_addresses(chosen, self.settings.gateway_bounce_domain)  # VERP, if configured
            with keeping_for(client.owner):  # a keeping backend records whose mail it keeps (the per-key outbox)
                results = self.deliver_now(chosen, via=via, on_outcome=relay, **context)
            passed = placed(passed, allowed, results)
        return passed

    def _store(self, messages: list[RenderedMessage], via: str, send_at: list[float | None], owner: str | None,
               transaction: Transaction | None) -> list[Any]:
        if not messages or self.spool is None:
            return []
        queued = self.spool.put(messages, via=via, send_at=send_at, owner=owner, transaction=transaction)
        results = stored(messages, queued, self.backend.name)
        if log.isEnabledFor(logging.INFO):
            for result in (r for r in results if isinstance(r, QueuedResult)):
                log.info("queued via=%s id=%s message_id=%s recipients=%d status=%s", via, result.id,
                         log_value(result.message_id or None), len(result.recipients), result.status)
        return results

    def deliver_now(self, messages: Sequence[RenderedMessage], *, via: str, on_outcome: OnOutcome | None = None,
                    on_list: frozenset[str] | None = None, **context: object) -> list[Outcome]:
        """Each message's result or delivery error, in order (``EmailBackend.deliver_all``), logged. ``on_outcome``
        hears each outcome as it happens; ``on_list``: the recipients a worker's claim found suppressed."""
        if not messages:
            return []
        started = time.perf_counter()
        lists = read_with_claim(self.suppressions, on_list)
        outcomes = self.chaos.deliver(messages, self.backend, lists, on_outcome, context.get("id"))
        duration_ms = round((time.perf_counter() - started) * 1000, 1) if len(messages) == 1 else None
        for message, outcome in zip(messages, outcomes, strict=True):
            log_delivery(self.backend.name, message, outcome, via, duration_ms, context, self.signed_by(message))
        return outcomes

    def signed_by(self, message: RenderedMessage) -> tuple[str, ...]:
        """The selectors of this gateway's DKIM signatures on ``message`` (the delivery log's ``dkim=``)."""
        return () if self._dkim is None else self._dkim.signed_by(message.data)

    def close(self) -> None:
        self._backend.close()
