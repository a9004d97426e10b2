"""The one place where a backend's outcome becomes the SMTP ingress's reply to the final dot of DATA.

The rule: ``250`` only when the backend accepted the message for at least one recipient. A client that gets
``4xx`` keeps the message and tries again; one that gets ``5xx`` bounces it to its sender.

When the upstream may have the message but did not say so (``DeliveryOutcomeUnknownError``) the answer is
``451``: the client keeps it and retries, which may deliver it twice. Answering ``250`` could lose it and a
``5xx`` would bounce a message that may well have arrived; between a duplicate and a loss SMTP prefers the
duplicate (RFC 5321, section 6.1).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mail_gateway.errors import (
    DeliveryOutcomeUnknownError,
    ExtensionMissingError,
    InvalidMessageError,
    MessageRefusedError,
    PermanentDeliveryError,
    RecipientsRefusedError,
    RecipientsSuppressedError,
    SenderNotAllowedError,
    StoreUnavailableError,
    TransientDeliveryError,
)
from mail_gateway.mail.result import QueuedResult, RecipientResult, SendResult

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
MAX_TEXT = 400  # a reply line may be at most 512 octets (RFC 5321, 4.5.3.1.5)


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    lines: tuple[str, ...]  # each line's text after the code, enhanced status code first
    outcome: str  # accepted, partial, deferred, rejected, unknown or error: the log's word for it

    @property
    def text(self) -> str:
        """The reply as aiosmtpd writes it: one line, or a multi-line reply (``250-...`` then ``250 ...``)."""
        last = len(self.lines) - 1
        return "\r\n".join(f"{self.code}{' ' if i == last else '-'}{line}" for i, line in enumerate(self.lines))


def _clean(text: str) -> str:
    # Upstream replies and exception texts become part of our reply: ASCII (the ingress does not offer
    # SMTPUTF8), no line breaks, bounded length.
    text = _CONTROL.sub(" ", text.encode("ascii", "replace").decode("ascii")).strip()
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def _refusal_lines(recipients: Sequence[RecipientResult], enhanced: str) -> list[str]:
    lines = []
    for r in recipients:
        if r.status == "suppressed":  # the gateway's own list, not the upstream's refusal
            lines.append(_clean(f"{enhanced} <{r.email}> is on the suppression list: not sent"))
        elif r.status != "accepted":
            upstream = f"{r.code} {r.reason or ''}".strip() if r.code is not None else r.status
            lines.append(_clean(f"{enhanced} <{r.email}> {r.status} by the upstream: {upstream}"))
    return lines


def reply_for_result(result: SendResult | QueuedResult) -> Reply:
    """The reply to a message the backend accepted, listing any recipients it refused; with queued delivery, to
    a message stored durably (``queued as <id>``, as Postfix says).

    A refused recipient cannot be un-accepted after RCPT, so the refusal is reported here and in the log;
    the message went to the others, and direct delivery keeps no queue to retry the rest.
    """
    if isinstance(result, QueuedResult):
        return Reply(250, (f"2.0.0 Ok: queued as {result.id}",), "queued")
    as_id = f" as {result.message_id}" if result.message_id else ""
    refused = _refusal_lines(result.recipients, "2.0.0")
    if not refused:
        return Reply(250, (_clean(f"2.0.0 OK: accepted by {result.backend}{as_id}"),), "accepted")
    summary = _clean(f"2.0.0 Accepted by {result.backend}{as_id} for {len(result.accepted)} of "
                     f"{len(result.recipients)} recipients; the others were not delivered:")
    return Reply(250, (summary, *refused), "partial")


def unusable(reason: str, cannot_be: str = "relayed") -> Reply:
    """The reply to a message refused for what it holds. RFC 3463's 5.6.0 (other media error): none of the
    other 5.6.x codes (a type not supported, a conversion) names a line too long or parts nested too deeply."""
    return Reply(554, (_clean(f"5.6.0 The message cannot be {cannot_be}: {reason}"),), "rejected")


def reply_for_error(exc: BaseException) -> Reply:
    """The reply to a message the backend did not accept."""
    if isinstance(exc, StoreUnavailableError):
        return Reply(451, ("4.3.0 The gateway's store is unavailable; the message was not accepted, try again later",),
                     "error")
    if isinstance(exc, DeliveryOutcomeUnknownError):
        return Reply(451, ("4.4.2 The upstream connection was lost after the message was sent; it may have "
                           "been delivered, so a retry may deliver it twice",), "unknown")
    if isinstance(exc, TransientDeliveryError):
        refused = _refusal_lines(exc.recipients, "4.4.0")
        return Reply(451, (_clean(f"4.4.0 Not delivered, try again later: {exc}"), *refused), "deferred")
    if isinstance(exc, SenderNotAllowedError):
        return Reply(550, (_clean(f"5.7.1 Sender not allowed: {exc}"),), "rejected")
    if isinstance(exc, ExtensionMissingError):
        # RFC 6531's code for an address that needs SMTPUTF8; RFC 3463's for a conversion that cannot be made.
        enhanced = "5.6.7" if exc.extension == "SMTPUTF8" else "5.6.3"
        return Reply(554, (_clean(f"{enhanced} Not delivered: {exc.client_detail or exc}"),), "rejected")
    if isinstance(exc, RecipientsSuppressedError):
        return Reply(550, ("5.7.1 Every recipient is on the suppression list; nothing was sent:",
                           *_refusal_lines(exc.recipients, "5.7.1")), "rejected")
    if isinstance(exc, RecipientsRefusedError):
        refused = _refusal_lines(exc.recipients, "5.1.0")
        return Reply(550, ("5.1.0 Every recipient was refused by the upstream:", *refused), "rejected")
    if isinstance(exc, InvalidMessageError | MessageRefusedError):  # unusable as it is, whichever step found it
        return unusable(str(exc))
    if isinstance(exc, PermanentDeliveryError):
        return Reply(554, (_clean(f"5.0.0 Not delivered: {exc}"),), "rejected")
    # Anything else (a bug, a broken third-party backend): nothing says the message was accepted, so the
    # client keeps it; the details go to the log, not to the client.
    return Reply(451, ("4.3.0 Local error; the message was not accepted, try again later",), "error")
