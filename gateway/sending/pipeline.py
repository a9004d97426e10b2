"""The message pipeline: the ordered steps every message passes between rendered and delivered (or stored).

``Sender.deliver`` runs each message of every way in (composed, raw, relayed, library) through its sender's one
``Pipeline`` before it is stored (queued delivery) or handed to the backend (direct), so what is stored is what
is sent. The built-in steps, in order:

1. ``sender-policy`` (only with ``GATEWAY_ALLOWED_SENDERS``): may the client send as the message's senders;
2. ``strip-bcc``: ``Bcc:`` and ``Resent-Bcc:`` fields removed, as every recipient would see them;
3. ``transfer-encoding``: the 7-bit/8-bit decision. When a later step signs the bytes, an 8-bit message is made
   7-bit here (and every line ended with CRLF, as on the wire), because which upstream it reaches (failover,
   round-robin, a retry, a queue worker) is unknown when it is signed, and one without 8BITMIME would otherwise
   get re-encoded bytes the signature does not cover.
   When nothing signs, 8-bit bytes are left alone and the SMTP backend downgrades them per upstream. A message
   whose envelope needs SMTPUTF8 (a non-ASCII local part) keeps the UTF-8 header text it cannot do without and
   is signed as it is: only an upstream that announced SMTPUTF8 takes it, and RFC 6531 requires 8BITMIME of those;
4. ``dkim`` (only with ``GATEWAY_DKIM_KEYS``): signs each message with its From domain's keys
   (``mail_gateway.sending.dkim``). It runs last, after the registered steps, so it signs what they made.

Adding a step: a step is any object with a ``name``, a ``signs`` flag and a ``__call__(message, context)`` that
returns the message to go on (the same, or ``dataclasses.replace(message, data=...)``) or a ``DeliveryError``
refusing it (logged and answered like the sender policy's); raising ``InvalidMessageError`` refuses it as
unusable (HTTP 422). ``register_step(step)`` appends it after the built-in steps but ``dkim`` (and after the
steps registered before it) in every sender built from then on; ``unregister_step(name)`` removes it. A step
that signs sets ``signs = True`` and so always runs after ``transfer-encoding``; a step between them must keep
a message 7-bit.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from mail_gateway.errors import ConfigurationError, DeliveryError, InvalidMessageError, MessageRefusedError
from mail_gateway.extras import needs_extra
from mail_gateway.mail.rendering import RenderedMessage, header_fields
from mail_gateway.mail.senders import sender_refusal
from mail_gateway.mail.sevenbit import seven_bit_message
from mail_gateway.settings import GatewaySettings
from mail_gateway.settings.senders import ANYONE, Client, SenderRules

ENCODING = "transfer-encoding"
DKIM = "dkim"
_BLIND_COPIES = (b"bcc", b"resent-bcc")
_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")
_HEADER_END = re.compile(rb"\n\r?\n")  # as rendering.header_fields finds it


@dataclass(frozen=True, slots=True)
class StepContext:
    """What a step knows of a message beyond its bytes."""

    via: str  # the way in: http, smtp (the ingress), library, cli
    backend: str  # the backend's name, for a refusal's DeliveryError
    client: Client = ANYONE  # who sends it: an API key, an ingress user, or anyone
    details: Mapping[str, object] = field(default_factory=dict)  # the way in's log fields (the ingress: peer, user)
    signed_later: bool = False  # whether a step after this one signs the bytes


class Step(Protocol):
    name: str
    signs: bool  # whether it signs the bytes, which must then reach every upstream as they are

    def __call__(self, message: RenderedMessage, context: StepContext) -> RenderedMessage | DeliveryError: ...


@dataclass(frozen=True)
class SenderPolicy:
    """``GATEWAY_ALLOWED_SENDERS``: refuses a message whose client may not use its senders."""

    rules: SenderRules
    name: str = "sender-policy"
    signs: bool = False

    def __call__(self, message: RenderedMessage, context: StepContext) -> RenderedMessage | DeliveryError:
        return sender_refusal(self.rules, context.client, message, context.backend) or message


@dataclass(frozen=True)
class StripBlindCopies:
    """Removes ``Bcc:`` and ``Resent-Bcc:`` fields, as Postfix's cleanup does: their recipients get the message
    through the envelope, and every other recipient would see them in the header."""

    name: str = "strip-bcc"
    signs: bool = False

    def __call__(self, message: RenderedMessage, context: StepContext) -> RenderedMessage:
        # Most messages have no such field: one look at the header block spares splitting it into fields.
        end = _HEADER_END.search(message.data)
        if b"bcc" not in message.data[:len(message.data) if end is None else end.start() + 1].lower():
            return message
        fields, rest = header_fields(message.data)
        kept = [f for f in fields if f.partition(b":")[0].strip().lower() not in _BLIND_COPIES]
        if len(kept) == len(fields):
            return message
        return replace(message, data=b"".join(kept) + rest)


@dataclass(frozen=True)
class TransferEncoding:
    """The 7-bit/8-bit decision (see the module's docstring)."""

    name: str = ENCODING
    signs: bool = False

    def __call__(self, message: RenderedMessage, context: StepContext) -> RenderedMessage:
        if not context.signed_later:
            return message
        # On the wire every line ends with CRLF, the last one too (the SMTP backend's DATA writer makes them so):
        # made so here, they are signed as they are sent.
        data = message.data
        if not data.count(b"\r") == data.count(b"\r\n") == data.count(b"\n"):
            data = _LINE_ENDINGS.sub(b"\r\n", data)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        if not data.isascii():
            try:
                data = seven_bit_message(data)
            except ValueError as exc:
                if _needs_smtputf8(message):  # its UTF-8 header text goes only where 8-bit data goes as it is
                    return replace(message, data=data)
                raise InvalidMessageError(
                    f"a signed message is made 7-bit before it is signed, and this one cannot be: {exc}; write "
                    "header text as RFC 2047 encoded-words and give 8-bit data MIME headers", field="data") from exc
        return replace(message, data=data)


def _needs_smtputf8(message: RenderedMessage) -> bool:
    return not all(address.isascii() for address in (message.envelope_from, *message.recipients))


class Pipeline:
    """Ordered steps; ``run`` passes a message through each in turn, stopping at the first refusal."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = tuple(steps)
        names = self.names
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate is not None:
            raise ConfigurationError(f"two pipeline steps are named {duplicate!r}; give each step its own name")
        signer = next((s.name for s in self.steps if s.signs), None)
        if signer is not None and (ENCODING not in names or names.index(signer) < names.index(ENCODING)):
            raise ConfigurationError(f"the pipeline step {signer!r} signs the bytes, so it must come after the "
                                     f"{ENCODING!r} step; add it with register_step, which places it there")
        # Whether any step after each one signs: the transfer-encoding step decides on it.
        self._signed_later = tuple(any(s.signs for s in self.steps[i + 1:]) for i in range(len(self.steps)))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(step.name for step in self.steps)

    def run(self, message: RenderedMessage, context: StepContext) -> RenderedMessage | DeliveryError:
        """The message every step let through, or the first refusal. A step that raises ``InvalidMessageError``
        refuses the message as unusable (``MessageRefusedError``), so one bad message of a batch is its own
        outcome and never stops the others."""
        for step, signed_later in zip(self.steps, self._signed_later, strict=True):
            try:
                outcome = step(message, replace(context, signed_later=signed_later))
            except InvalidMessageError as exc:
                return MessageRefusedError(f"the {step.name} step refused the message: {exc}", errors=exc.errors,
                                           backend=context.backend, message_id=message.message_id)
            if isinstance(outcome, DeliveryError):
                return outcome
            message = outcome
        return message


_lock = threading.Lock()
_registered: dict[str, Step] = {}
_BUILT_IN = (SenderPolicy.name, StripBlindCopies.name, TransferEncoding.name, DKIM)


def register_step(step: Step) -> None:
    """Append ``step`` to the pipeline of every sender built from now on, after the built-in steps (but
    ``dkim``, which signs last) and the steps registered before it."""
    with _lock:
        if step.name in _BUILT_IN or step.name in _registered:
            raise ConfigurationError(f"a pipeline step named {step.name!r} is already registered; choose another "
                                     "name, or unregister_step it first")
        _registered[step.name] = step


def unregister_step(name: str) -> None:
    with _lock:
        _registered.pop(name, None)


def build_pipeline(settings: GatewaySettings) -> Pipeline:
    """The built-in steps the settings call for, then the registered ones, then DKIM signing; a DKIM key that
    cannot sign is a ``ConfigurationError``."""
    steps: list[Step] = [] if settings.sender_rules is None else [SenderPolicy(settings.sender_rules)]
    steps += [StripBlindCopies(), TransferEncoding()]
    with _lock:
        steps += _registered.values()
    if not settings.dkim.dkim_key_sources:
        return Pipeline(steps)
    # Signing needs dkimpy and cryptography (the dkim extra), loaded only when keys are configured.
    with needs_extra("GATEWAY_DKIM_KEYS", variable="GATEWAY_DKIM_KEYS"):
        from mail_gateway.sending.dkim import DkimSigning
    signing = DkimSigning.from_settings(settings.dkim)
    return Pipeline(steps if signing is None else [*steps, signing])
