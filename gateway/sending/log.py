"""The one ``delivery`` log line each message gets, whichever way it came in and whichever the backend."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence

from mail_gateway.errors import (
    DeliveryError,
    DeliveryOutcomeUnknownError,
    PermanentDeliveryError,
    RecipientsSuppressedError,
    SenderNotAllowedError,
)
from mail_gateway.mail.rendering import RenderedMessage
from mail_gateway.mail.result import SendResult

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
    if isinstance(outcome, RecipientsSuppressedError):
        return "suppressed"
    if isinstance(outcome, SenderNotAllowedError):
        return "sender-not-allowed"
    return "refused" if isinstance(outcome, PermanentDeliveryError) else "deferred"


def log_delivery(backend: str, message: RenderedMessage, outcome: Outcome, via: str, duration_ms: float | None,
                 context: dict[str, object], dkim: Sequence[str] = ()) -> None:
    """``dkim``: the selectors of the gateway's DKIM signatures on the message (``dkim=none`` without)."""
    level = logging.WARNING if isinstance(outcome, DeliveryError) else logging.INFO
    if not log.isEnabledFor(level):
        return
    accepted = len(outcome.accepted) if isinstance(outcome, SendResult) else 0
    code = 250 if isinstance(outcome, SendResult) and outcome.upstream else getattr(outcome, "smtp_code", None)
    fields: dict[str, object] = {
        "via": via, "message_id": message.message_id or None, "backend": backend,
        "upstream": outcome.upstream, "recipients": len(message.recipients), "accepted": accepted,
        "outcome": outcome_word(outcome), "smtp_code": code, "attempts": outcome.attempts,
        "duration_ms": duration_ms, "dkim": ",".join(dkim) or "none", **context}
    if getattr(outcome, "injected", False):  # failed on purpose by the chaos switch (sending.chaos)
        fields["injected"] = "true"
    suppressed = sum(r.status == "suppressed" for r in outcome.recipients)
    if suppressed:  # recipients on the suppression list, left out
        fields["suppressed"] = suppressed
    line = " ".join(f"{key}={log_value(value)}" for key, value in fields.items())
    if isinstance(outcome, DeliveryError):
        line += f" reason={log_value(outcome)}"
    log.log(level, "delivery %s", line, extra={"delivery": fields})
