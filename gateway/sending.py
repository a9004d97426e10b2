"""The one send path: validate once → compose once → render once → one backend call → one log line.

Every way a message leaves the gateway comes through a ``Sender``: the HTTP routes (one message, a batch, a raw
message), ``mail-gateway send``, the SMTP ingress and the Flask extension's library use. Each way in validates
and renders what it was given (``mail_gateway.mail``), then ``deliver`` hands the rendered messages to the
backend in one call (``EmailBackend.deliver_all``) and writes one ``delivery`` log line per message.

Validation errors are ``InvalidMessageError`` (each field and its fix), delivery failures ``DeliveryError``
subclasses: the HTTP layer, the CLI and the ingress each turn them into their own answer, in one place.

With ``GATEWAY_ALLOWED_SENDERS`` set, ``deliver`` first checks each message's senders (envelope, From, Sender)
against what its client may use; a refused message never reaches the backend, and its outcome is a
``SenderNotAllowedError`` (HTTP 403, SMTP ``550 5.7.1``), logged like any other.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from typing import Any

from mail_gateway.backends.base import EmailBackend
from mail_gateway.backends.registry import create_backend
from mail_gateway.errors import (
    ConfigurationError,
    DeliveryError,
    DeliveryOutcomeUnknownError,
    PermanentDeliveryError,
    SenderNotAllowedError,
)
from mail_gateway.mail.addresses import Address, parse_address
from mail_gateway.mail.compose import compose
from mail_gateway.mail.rendering import RenderedMessage, render_email, render_raw
from mail_gateway.mail.request import MessageRequest, parse_message_request
from mail_gateway.mail.result import SendResult
from mail_gateway.mail.senders import sender_refusal
from mail_gateway.settings import GatewaySettings
from mail_gateway.settings.senders import ANYONE, Client

log = logging.getLogger("mail_gateway.delivery")
Outcome = SendResult | DeliveryError


_PLAIN_TOKEN = re.compile(r'[!#-<>-\[\]-~]+')  # printable ASCII but space, '"', '=' and '\\'


def log_value(value: object) -> str:
    """A value as a ``key=value`` log field: plain when it is one printable token, else JSON-quoted, so no
    value can break the line or forge another field or record."""
    text = "-" if value is None else str(value)
    return text if _PLAIN_TOKEN.fullmatch(text) else json.dumps(text)


def outcome_word(outcome: Outcome) -> str:
    if isinstance(outcome, SendResult):
        return "accepted" if len(outcome.accepted) == len(outcome.recipients) else "partly-accepted"
    if isinstance(outcome, DeliveryOutcomeUnknownError):
        return "unknown"
    if isinstance(outcome, SenderNotAllowedError):
        return "sender-not-allowed"
    return "refused" if isinstance(outcome, PermanentDeliveryError) else "deferred"


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
    def __init__(self, settings: GatewaySettings, backend: EmailBackend) -> None:
        self.settings = settings
        self.backend = backend
        self.default_sender = default_sender(settings)
        self.sender_rules = settings.sender_rules  # None: anyone may send as anyone

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> Sender:
        """The configured backend behind a sender, without any Flask app (the CLI, the SMTP ingress)."""
        return cls(settings, create_backend(settings))

    # -- ways in -----------------------------------------------------------------------------------------

    def parse(self, payload: Any) -> MessageRequest:
        """Validate a message as the HTTP API and the CLI describe it; raises ``InvalidMessageError``."""
        return parse_message_request(payload, default_sender=self.default_sender,
                                     max_recipients=self.settings.gateway_max_recipients)

    def send(self, request: MessageRequest, *, via: str, client: Client = ANYONE) -> SendResult:
        return self.send_rendered(compose(request), via=via, client=client)

    def send_raw(self, mail_from: str, rcpt_to: Sequence[str], data: bytes, *, via: str,
                 add_missing: bool = True, client: Client = ANYONE, **context: object) -> SendResult:
        rendered = render_raw(mail_from, rcpt_to, data, add_missing=add_missing)
        return self.send_rendered(rendered, via=via, client=client, **context)

    def send_email(self, message: Any) -> SendResult:
        """A flask-mailman (or Django-style) message object, for the Flask extension's library use."""
        return self.send_rendered(render_email(message), via="library")

    def may_send_as(self, client: Client, address: str) -> bool:
        """Whether GATEWAY_ALLOWED_SENDERS lets ``client`` use ``address`` (the ingress asks at MAIL FROM)."""
        return self.sender_rules is None or self.sender_rules.allows(client, address)

    # -- the one call to the backend -----------------------------------------------------------------------

    def send_rendered(self, message: RenderedMessage, *, via: str, client: Client = ANYONE,
                      **context: object) -> SendResult:
        [outcome] = self.deliver([message], via=via, client=client, **context)
        if isinstance(outcome, DeliveryError):
            raise outcome
        return outcome

    def deliver(self, messages: Sequence[RenderedMessage], *, via: str, client: Client = ANYONE,
                **context: object) -> list[Outcome]:
        """Each message's result or delivery error, in order (``EmailBackend.deliver_all``), logged. Messages
        whose senders ``client`` may not use are refused here, before the backend."""
        if not messages:
            return []
        refused: list[Outcome | None] = [None] * len(messages)
        if self.sender_rules is not None:
            refused = [sender_refusal(self.sender_rules, client, m, self.backend.name) for m in messages]
        allowed = [m for m, refusal in zip(messages, refused, strict=True) if refusal is None]
        started = time.perf_counter()
        delivered = iter(self.backend.deliver_all(allowed) if allowed else [])
        duration_ms = round((time.perf_counter() - started) * 1000, 1) if len(messages) == 1 else None
        outcomes = [refusal if refusal is not None else next(delivered) for refusal in refused]
        for message, outcome in zip(messages, outcomes, strict=True):
            self._log(message, outcome, via, duration_ms, context)
        return outcomes

    def _log(self, message: RenderedMessage, outcome: Outcome, via: str, duration_ms: float | None,
             context: dict[str, object]) -> None:
        level = logging.WARNING if isinstance(outcome, DeliveryError) else logging.INFO
        if not log.isEnabledFor(level):
            return
        accepted = len(outcome.accepted) if isinstance(outcome, SendResult) else 0
        code = 250 if isinstance(outcome, SendResult) and outcome.upstream else getattr(outcome, "smtp_code", None)
        fields: dict[str, object] = {
            "via": via, "message_id": message.message_id or None, "backend": self.backend.name,
            "upstream": outcome.upstream, "recipients": len(message.recipients), "accepted": accepted,
            "outcome": outcome_word(outcome), "smtp_code": code, "attempts": outcome.attempts,
            "duration_ms": duration_ms, **context}
        line = " ".join(f"{key}={log_value(value)}" for key, value in fields.items())
        if isinstance(outcome, DeliveryError):
            line += f" reason={log_value(outcome)}"
        log.log(level, "delivery %s", line, extra={"delivery": fields})

    def close(self) -> None:
        self.backend.close()
