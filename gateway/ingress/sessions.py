"""One SMTP session of the ingress: aiosmtpd's protocol with the limits that keep clients from locking others out.

- At most ``GATEWAY_SMTP_MAX_SESSIONS`` sessions, and ``GATEWAY_SMTP_MAX_SESSIONS_PER_ADDRESS`` from one client
  address; the next is greeted with ``421``.
- A session must reach ``MAIL FROM`` within ``GATEWAY_SMTP_START_TIMEOUT`` (NOOP does not count), send each command
  and chunk of a message within ``GATEWAY_SMTP_TIMEOUT`` and end within ``GATEWAY_SMTP_MAX_SESSION_SECONDS``; else
  it gets ``421`` between commands (never during a delivery), telling a timeout from a dropped link, and is closed.
- ``GATEWAY_SMTP_MAX_AUTH_FAILURES`` failed AUTH attempts close the session with ``421``; each attempt from an
  address with recent failures first waits, longer after every failure (``auth.AuthFailures``).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from typing import Any, AnyStr

from aiosmtpd.smtp import TLSSetupException

from mail_gateway.ingress.auth import AuthFailures
from mail_gateway.ingress.commands import AUTH_HELP, DATA_HELP, MAIL_HELP, HardenedCommands
from mail_gateway.ingress.handler import describe_peer
from mail_gateway.ingress.wording import exact_rewordings, reworded

log = logging.getLogger("mail_gateway.ingress")

TOO_MANY_SESSIONS = b"421 4.7.0 Too many connections, try again later\r\n"
TOO_MANY_FROM_ADDRESS = b"421 4.7.0 Too many connections from your address, try again later\r\n"
TOO_MANY_AUTH_FAILURES = "421 4.7.0 Too many failed AUTH attempts, closing connection"
START_EXPIRED = b"421 4.4.2 No MAIL FROM in time, closing connection\r\n"
AUTH_NOT_OFFERED = "503 5.5.1 AUTH is not offered here (GATEWAY_SMTP_USERS is not set); send without AUTH"
SESSION_EXPIRED = b"421 4.4.2 Session too long, closing connection; reconnect to send more\r\n"
IDLE_EXPIRED = b"421 4.4.2 No command in time, closing connection\r\n"


def peer_host(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)


class SessionLimit:
    """How many sessions are open, in all and per client address; touched only from the event loop's thread,
    so no lock."""

    def __init__(self, maximum: int, per_address: int) -> None:
        self.maximum = maximum
        self.per_address = min(per_address, maximum)
        self.active = 0
        self.by_address: Counter[str] = Counter()

    def refusal(self, host: str) -> bytes | None:
        """None when a session from ``host`` may start (and is counted), else the reply refusing it."""
        if self.active >= self.maximum:
            return TOO_MANY_SESSIONS
        if self.by_address[host] >= self.per_address:
            return TOO_MANY_FROM_ADDRESS
        self.active += 1
        self.by_address[host] += 1
        return None

    def release(self, host: str) -> None:
        self.active -= 1
        self.by_address[host] -= 1
        if self.by_address[host] <= 0:
            del self.by_address[host]


class IngressSMTP(HardenedCommands):
    """aiosmtpd's SMTP protocol with the session limits above and a pausable command timeout."""

    def __init__(self, handler: Any, *, limit: SessionLimit, auth_failures: AuthFailures, limits: dict[str, float],
                 auth_without_tls: bool, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._limit = limit
        self._auth_failures = auth_failures
        self._limits = limits
        self._host: str | None = None  # set while the session is counted
        self._refused = False
        self._deadlines: dict[str, asyncio.TimerHandle] = {}
        self._delivering = False
        self._receiving_data = False
        self._rewordings = exact_rewordings(self.data_size_limit)
        if auth_without_tls:
            # Passed to aiosmtpd as True and relaxed here: aiosmtpd warns on every connection about AUTH
            # without TLS, which start-up has already restricted to a loopback address.
            self._auth_require_tls = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None and self._host is None:  # a new connection, not the switch to TLS
            host = peer_host(transport)
            refusal = self._limit.refusal(host)
            if refusal is not None:
                self._refused = True
                transport.write(refusal)  # type: ignore[attr-defined]
                transport.close()
                return
            self._host = host
            loop = asyncio.get_running_loop()
            self._deadlines = {
                "start": loop.call_later(self._limits["start"], self._expire, START_EXPIRED),
                "session": loop.call_later(self._limits["session"], self._expire, SESSION_EXPIRED),
            }
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        try:
            super().connection_lost(error)
        finally:
            for handle in self._deadlines.values():
                handle.cancel()
            self._deadlines = {}
            if self._host is not None:
                self._limit.release(self._host)
                self._host = None

    def eof_received(self) -> bool | None:
        if self._refused:
            return False
        if self.session is None or self.session.ssl is not None:
            return super().eof_received()
        # aiosmtpd ends the session here, even while a delivery runs on its worker thread: a client that sent "."
        # and QUIT and shut down its side never read the reply and sent the message again. The commands read are
        # answered instead (a half-closed socket takes replies); reading past them ends it (handle_exception).
        return asyncio.StreamReaderProtocol.eof_received(self)

    def _expire(self, reply: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self._delivering:  # the client is owed the delivery's reply first
            asyncio.get_running_loop().call_later(0.5, self._expire, reply)
            return
        self.transport.write(reply)  # type: ignore[attr-defined]
        self.transport.close()

    def _timeout_cb(self) -> None:
        # aiosmtpd closes the connection without a word, which a client reads as a dropped connection.
        log.info("SMTP session with %s ended: no command within the timeout",
                 describe_peer(getattr(self.session, "peer", "?")))
        self._expire(IDLE_EXPIRED)

    def data_received(self, data: bytes) -> None:
        # aiosmtpd times a whole message from its DATA command, cutting off one that arrives steadily but slower:
        # each chunk restarts the timeout instead, as RFC 5321 4.5.3.2.5 times DATA.
        if self._receiving_data and not self._delivering and self.transport is not None:
            self._reset_timeout()
        super().data_received(data)

    @DATA_HELP
    async def smtp_DATA(self, arg: str) -> None:
        self._receiving_data = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self._receiving_data = False

    @MAIL_HELP
    async def smtp_MAIL(self, arg: str | None) -> None:
        await super().smtp_MAIL(arg)
        if self.envelope is not None and self.envelope.mail_from is not None and "start" in self._deadlines:
            self._deadlines.pop("start").cancel()

    @AUTH_HELP
    async def smtp_AUTH(self, arg: str) -> None:
        if self._authenticator is None:
            # aiosmtpd would answer 538 (encryption required) and send the client looking for a STARTTLS that
            # may not exist either: AUTH is off altogether.
            await self.push(AUTH_NOT_OFFERED)
            return
        host = self._host or "?"
        delay = self._auth_failures.delay(host)
        if delay:
            await asyncio.sleep(delay)
        failed_before = getattr(self.session, "auth_failures", 0)
        await super().smtp_AUTH(arg)
        failed = getattr(self.session, "auth_failures", 0)
        if failed > failed_before:
            self._auth_failures.failed(host)
            if failed >= self._limits["auth_failures"] and self.transport is not None:
                await self.push(TOO_MANY_AUTH_FAILURES)
                self.transport.close()

    async def push(self, status: AnyStr) -> None:
        await super().push(reworded(status, self._rewordings) if isinstance(status, str) else status)

    async def handle_exception(self, error: Exception) -> str:
        if not isinstance(error, TLSSetupException | ConnectionError | ssl.SSLError | asyncio.IncompleteReadError):
            return await super().handle_exception(error)  # the handler's: logged with its traceback
        # The client's doing, not ours (a TLS handshake it gave up on, a dropped connection), and any scanner
        # can do it on every connection: one line, no traceback.
        reason = error.__cause__ if isinstance(error, TLSSetupException) and error.__cause__ else error
        peer = describe_peer(self.session.peer) if self.session is not None else "?"
        # End of input: the client closed its side. After QUIT the session is closing anyway: nothing to say.
        if isinstance(error, asyncio.IncompleteReadError):
            if self.transport is not None and not self.transport.is_closing():
                log.info("SMTP session with %s ended: the client closed the connection", peer)
        else:
            what = "TLS handshake failed" if isinstance(error, TLSSetupException) else "connection error"
            log.info("SMTP session with %s ended, %s: %s", peer, what, str(reason) or type(reason).__name__)
        if self.transport is not None:
            self.transport.close()
        return "421 4.4.2 Connection error, closing connection"

    def pause_timeout(self) -> None:
        self._delivering = True
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()

    def resume_timeout(self) -> None:
        self._delivering = False
        self._rewordings = exact_rewordings(self.data_size_limit)
        if self.transport is not None:
            self._reset_timeout()
