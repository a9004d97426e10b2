"""The chaos switch: the development backends (memory, console, file) fail on purpose, so an application's error
paths can be tried against the same API it uses in production.

An injected failure is the very ``DeliveryError`` the SMTP backend raises for that reply (a 421 greeting, a 451
or 552 to the message, 550 5.1.1 to every recipient), so the HTTP API answers the same problem and the queue
retries a 4xx and gives up on a 5xx. It never reaches the backend, is marked ``injected`` (the delivery log line
says ``injected=true``) and the last ``RECENT`` are listed for the outbox page.

Which sends fail is deterministic, never random: of the sends whose envelope matches ``recipients``, the n-th
fails when ``n * percent // 100`` grows, which spreads exactly ``percent`` failures over every 100 sends (50: every
second one, 25: every fourth, 100: all). Changing the switch restarts the count.

``GATEWAY_CHAOS`` sets it at start-up: ``key=value`` items separated by ``;``, such as
``reply=550 5.1.1;percent=50;recipients=*@bounce.test;delay_ms=200`` (``off`` or nothing: off). It is refused in
production, and with a backend that is not a development one.
"""

from __future__ import annotations

import fnmatch
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mail_gateway.backends.base import EmailBackend
from mail_gateway.errors import (
    ConfigurationError,
    ConnectionSetupError,
    DeliveryError,
    FieldError,
    PermanentDeliveryError,
    RecipientsRefusedError,
    TransientDeliveryError,
)
from mail_gateway.mail.rendering import RenderedMessage
from mail_gateway.mail.result import RecipientResult, SendResult
from mail_gateway.sending.suppress import SuppressionList, deliver_unsuppressed

Outcome = SendResult | DeliveryError
OnOutcome = Callable[[int, Outcome], None]

DEVELOPMENT_BACKENDS = frozenset({"memory", "console", "file"})
RECENT = 50
MAX_DELAY_MS = 60_000
UPSTREAM = "chaos"  # what the log's upstream= says of an injected reply
# Each reply the switch can inject: the error the SMTP backend raises for it, the reply text, and what a client
# is told (None: the same generic words as for a real upstream's).
REPLIES: dict[str, tuple[type[DeliveryError], str, str | None]] = {
    "421": (ConnectionSetupError, "4.3.2 Service not available, closing transmission channel",
            "The upstream refused the connection."),
    "451": (TransientDeliveryError, "4.3.0 Requested action aborted: local error in processing", None),
    "550 5.1.1": (RecipientsRefusedError, "5.1.1 The email account that you tried to reach does not exist", None),
    "552": (PermanentDeliveryError, "5.3.4 Message size exceeds fixed maximum message size", None),
}
KEYS = ("enabled", "reply", "percent", "recipients", "delay_ms")


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    enabled: bool = False
    reply: str | None = "451"  # None: only the delay
    percent: int = 100
    recipients: str | None = None  # a glob (*@bounce.test), or a regular expression between slashes (/^x/)
    delay_ms: int = 0

    def problems(self) -> list[FieldError]:
        """Each field that cannot work, and its fix."""
        found = []
        if self.reply is not None and self.reply not in REPLIES:
            found.append(FieldError("reply", f"choose one of {', '.join(REPLIES)} (or null for only a delay)"))
        if not 0 <= self.percent <= 100:
            found.append(FieldError("percent", "give a whole number from 0 to 100"))
        if not 0 <= self.delay_ms <= MAX_DELAY_MS:
            found.append(FieldError("delay_ms", f"give a whole number of milliseconds from 0 to {MAX_DELAY_MS}"))
        if self.recipients is not None and _regex(self.recipients) is not None:
            try:
                re.compile(_regex(self.recipients) or "")
            except re.error as exc:
                found.append(FieldError("recipients", f"the regular expression is invalid ({exc}); fix it, or "
                                                      "give a glob such as *@bounce.test"))
        return found

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in KEYS}


def _regex(pattern: str) -> str | None:
    return pattern[1:-1] if len(pattern) >= 2 and pattern.startswith("/") and pattern.endswith("/") else None


def matches(pattern: str | None, recipients: Sequence[str]) -> bool:
    """Whether any envelope recipient matches, case-insensitively; no pattern matches every send."""
    if pattern is None:
        return True
    regex = _regex(pattern)
    if regex is not None:
        compiled = re.compile(regex, re.IGNORECASE)
        return any(compiled.search(address) for address in recipients)
    return any(fnmatch.fnmatchcase(address.casefold(), pattern.casefold()) for address in recipients)


def parse_chaos(text: str | None) -> ChaosConfig:
    """``GATEWAY_CHAOS`` as a switch; ``ConfigurationError`` naming the setting and the fix."""
    if text is None or text.strip().lower() in ("", "off", "false"):
        return ChaosConfig()
    values: dict[str, Any] = {"enabled": True}
    try:
        for item in filter(None, (part.strip() for part in text.split(";"))):
            key, equals, value = (part.strip() for part in item.partition("="))
            if not equals or key not in KEYS[1:]:
                raise ValueError(f"{item!r} is not one of reply=, percent=, recipients=, delay_ms=")
            values[key] = int(value) if key in ("percent", "delay_ms") else (value or None)
        config = ChaosConfig(**values)
    except ValueError as exc:
        raise ConfigurationError(f"GATEWAY_CHAOS is invalid ({exc}); write it as 'reply=451;percent=50' (items "
                                 "reply, percent, recipients, delay_ms separated by ';'), or unset it",
                                 variable="GATEWAY_CHAOS") from exc
    if config.problems():
        first = config.problems()[0]
        raise ConfigurationError(f"GATEWAY_CHAOS's {first.field} is invalid: {first.message}", variable="GATEWAY_CHAOS")
    return config


def injected_error(reply: str, message: RenderedMessage, backend: str) -> DeliveryError:
    kind, text, client_detail = REPLIES[reply]
    code = int(reply[:3])
    results = [RecipientResult(address, "rejected", code, text) for address in message.recipients]
    error = kind(f"{UPSTREAM}: injected {code} {text} (GATEWAY_CHAOS or the outbox's chaos switch)",
                 backend=backend, message_id=message.message_id, smtp_code=code, upstream=UPSTREAM, smtp_text=text,
                 client_detail=client_detail, recipients=results if kind is RecipientsRefusedError else ())
    error.injected = True  # type: ignore[attr-defined]  # what the log line marks (sending.log)
    return error


class ChaosSwitch:
    """The switch one sender consults before its backend; thread-safe."""

    def __init__(self, config: ChaosConfig | None = None, *, allowed: str | None = None) -> None:
        """``allowed``: None when the switch may be turned on, else why not (production), for the API's refusal."""
        self.allowed = allowed
        self._lock = threading.Lock()
        self._config = config or ChaosConfig()
        self._count = 0
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT)

    @classmethod
    def from_settings(cls, chaos: str | None, env: str, backend: str) -> ChaosSwitch:
        """The switch GATEWAY_CHAOS sets; ``ConfigurationError`` in production or with another backend."""
        config = parse_chaos(chaos)
        production = "chaos is refused in production (GATEWAY_ENV=production)"
        if config.enabled and env == "production":
            raise ConfigurationError("GATEWAY_CHAOS is set in production, where failing on purpose is refused; "
                                     "unset GATEWAY_CHAOS", variable="GATEWAY_CHAOS")
        if config.enabled and backend not in DEVELOPMENT_BACKENDS:
            raise ConfigurationError(f"GATEWAY_CHAOS makes the development backends (memory, console, file) fail, "
                                     f"and MAIL_BACKEND is {backend}; unset GATEWAY_CHAOS or choose one of them",
                                     variable="GATEWAY_CHAOS")
        return cls(config, allowed=production if env == "production" else None)

    @property
    def config(self) -> ChaosConfig:
        return self._config

    def configure(self, config: ChaosConfig) -> None:
        with self._lock:
            self._config = config
            self._count = 0

    def recent(self) -> list[dict[str, Any]]:
        """The last injected failures, newest first."""
        with self._lock:
            return list(reversed(self._recent))

    def _decide(self, message: RenderedMessage, backend: str) -> tuple[float, DeliveryError | None]:
        """The delay (seconds) and the injected failure, if any, of one send."""
        with self._lock:
            config = self._config
            if not config.enabled or not matches(config.recipients, message.recipients):
                return 0.0, None
            self._count += 1
            chosen = self._count * config.percent // 100 > (self._count - 1) * config.percent // 100
            if not chosen or config.reply is None:
                return config.delay_ms / 1000, None
            self._recent.append({"at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                                 "recipients": list(message.recipients), "reply": config.reply})
        return config.delay_ms / 1000, injected_error(config.reply, message, backend)

    def deliver(self, messages: Sequence[RenderedMessage], backend: EmailBackend, suppressions: SuppressionList | None,
                on_outcome: OnOutcome | None, gateway_id: object) -> list[Outcome]:
        """Each message's outcome, in order: the injected failures, and the backend's for the others
        (``deliver_unsuppressed``, the one call to it)."""
        if not self._config.enabled or backend.name not in DEVELOPMENT_BACKENDS:
            return deliver_unsuppressed(messages, suppressions, backend, on_outcome, gateway_id)
        decided = [self._decide(message, backend.name) for message in messages]
        delay = sum(seconds for seconds, _ in decided)
        if delay:
            time.sleep(delay)  # the slow upstream asked for
        outcomes: list[Outcome | None] = [error for _, error in decided]
        passing = [i for i, error in enumerate(outcomes) if error is None]
        relay = None if on_outcome is None else (lambda j, outcome: on_outcome(passing[j], outcome))
        if passing:
            sent = deliver_unsuppressed([messages[i] for i in passing], suppressions, backend, relay, gateway_id)
            for j, outcome in enumerate(sent):
                outcomes[passing[j]] = outcome
        for i, error in enumerate(outcomes):
            if error is not None and i not in passing and on_outcome is not None:
                on_outcome(i, error)
        return [outcome for outcome in outcomes if outcome is not None]
