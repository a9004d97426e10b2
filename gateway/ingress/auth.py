"""AUTH at the SMTP ingress: the authenticator that checks a login against ``GATEWAY_SMTP_USERS``, what keeps it
from being guessed (failures per client address, each slowing that address's next attempt), and what keeps the
answers clients send out of the logs. Whether AUTH is required at all is ``ingress.security``'s.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import AuthResult, LoginPassword

log = logging.getLogger("mail_gateway.ingress")

# An address's AUTH attempts wait this long after its first failure, doubled after each further one, up to the
# maximum; its failures are forgotten after a quiet spell. Module constants, so tests can shorten them.
AUTH_DELAY_BASE_SECONDS = 0.5
AUTH_DELAY_MAX_SECONDS = 30.0
AUTH_QUIET_SECONDS = 900.0
AUTH_LOG_EVERY_SECONDS = 60.0
MAX_TRACKED_ADDRESSES = 10_000


@dataclass
class _Burst:
    failures: int = 0
    last: float = 0.0
    logged: float = 0.0
    unlogged: int = 0


class AuthFailures:
    """Failed AUTH attempts per client address, shared by every session; used from the event loop only.

    Written here because aiosmtpd only counts commands per session, which a guesser escapes by reconnecting.
    A burst of failures is logged once when it starts, then at most once a minute with how many followed.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._bursts: dict[str, _Burst] = {}

    def _current(self, host: str) -> _Burst | None:
        burst = self._bursts.get(host)
        if burst is not None and self._clock() - burst.last > AUTH_QUIET_SECONDS:
            del self._bursts[host]
            return None
        return burst

    def delay(self, host: str) -> float:
        """Seconds the next AUTH attempt from ``host`` waits before it is checked."""
        burst = self._current(host)
        if burst is None or burst.failures == 0:
            return 0.0
        return min(AUTH_DELAY_MAX_SECONDS, AUTH_DELAY_BASE_SECONDS * 2 ** (burst.failures - 1))

    def failed(self, host: str) -> None:
        now = self._clock()
        burst = self._current(host)
        if burst is None:
            if len(self._bursts) >= MAX_TRACKED_ADDRESSES:
                self._forget_quiet(now)
            burst = self._bursts[host] = _Burst()
        burst.failures += 1
        burst.last = now
        if burst.failures == 1:
            burst.logged = now
            log.warning("AUTH refused for a client at %s; its further failures are counted, and its attempts "
                        "slowed, until it has been quiet for %gs", host, AUTH_QUIET_SECONDS)
        elif now - burst.logged >= AUTH_LOG_EVERY_SECONDS:
            log.warning("AUTH refused %d more times for a client at %s in the last %.0fs (%d failures in this "
                        "burst)", burst.unlogged + 1, host, now - burst.logged, burst.failures)
            burst.logged, burst.unlogged = now, 0
        else:
            burst.unlogged += 1

    def _forget_quiet(self, now: float) -> None:
        for host in [h for h, b in self._bursts.items() if now - b.last > AUTH_QUIET_SECONDS]:
            del self._bursts[host]
        if len(self._bursts) >= MAX_TRACKED_ADDRESSES:  # still full: the oldest bursts go first
            for host in sorted(self._bursts, key=lambda h: self._bursts[h].last)[: MAX_TRACKED_ADDRESSES // 10]:
                del self._bursts[host]


class _ClientSecretsHidden(logging.Filter):
    """Blanks, in what aiosmtpd logs on ``mail.log`` (its command lines at INFO, an unknown command at WARNING, an
    AUTH answer it cannot decode at DEBUG), each line a client sent that is no SMTP command: an AUTH answer sent
    without base64 is the password itself, and a client whose AUTH failed sends its next answer as a command line.
    aiosmtpd blanks only the credentials of ``AUTH PLAIN <credentials>``."""

    # Each format, which of its arguments the client sent, and whether an SMTP command there is kept as it is.
    CLIENT_TEXT = {"%r >> %r": (1, True), "_handle_client readline: %r": (0, True), "%r unrecognised: %s": (1, False),
                   "%r can't decode base64: %s": (1, False)}

    def filter(self, record: logging.LogRecord) -> bool:
        found = self.CLIENT_TEXT.get(record.msg) if isinstance(record.msg, str) else None
        if found is not None and isinstance(record.args, tuple) and len(record.args) > found[0]:
            index, commands_kept = found
            if not (commands_kept and _is_command(record.args[index])):
                record.args = (*record.args[:index], "********", *record.args[index + 1:])
        return True


_COMMANDS = frozenset({"HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP",
                       "STARTTLS", "AUTH", "BDAT"})


def _is_command(line: object) -> bool:
    text = line.decode("ascii", "replace") if isinstance(line, bytes) else str(line)
    words = text.split(maxsplit=1)
    return bool(words) and words[0].upper() in _COMMANDS


def hide_client_secrets() -> None:
    """Keep what clients send that is no command out of aiosmtpd's log, whatever level it is set to (once a
    process)."""
    aiosmtpd_log = logging.getLogger("mail.log")
    if not any(isinstance(f, _ClientSecretsHidden) for f in aiosmtpd_log.filters):
        aiosmtpd_log.addFilter(_ClientSecretsHidden())


class Authenticator:
    """aiosmtpd's authenticator for AUTH PLAIN and LOGIN against ``GATEWAY_SMTP_USERS``.

    A refusal is ``AuthResult(success=False, handled=False)``, which makes aiosmtpd answer ``535``.
    """

    def __init__(self, users: dict[str, str]) -> None:
        self._users = {user.encode(): password.encode() for user, password in users.items()}

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            expected = self._users.get(auth_data.login)
            # Compared even for an unknown user, so the answer's timing does not tell which users exist.
            matches = hmac.compare_digest(expected or b"\0" * 32, auth_data.password)
            if expected is not None and matches:
                # Only the login is kept on the session; the password is not needed after this.
                return AuthResult(success=True, auth_data=LoginPassword(auth_data.login, b""))
        # Counted on the session; the session and AuthFailures decide what follows, and log it once per burst.
        session.auth_failures = getattr(session, "auth_failures", 0) + 1
        return AuthResult(success=False, handled=False)

    def __repr__(self) -> str:
        return f"<Authenticator users={len(self._users)}>"
