"""Run the SMTP ingress: aiosmtpd on its own thread and event loop, with the gateway's limits and security.

``IngressServer(settings, sender).start()`` checks the configuration, binds the port (so a port in use is a
start-up error, and port 0 picks a free one) and serves until ``stop()``. The sender (and its backend) is the
one the HTTP side uses when both run in one process.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from mail_gateway.errors import ConfigurationError
from mail_gateway.ingress.handler import RelayHandler
from mail_gateway.ingress.security import Authenticator, check_exposure, server_tls_context
from mail_gateway.sending import Sender

if TYPE_CHECKING:
    from mail_gateway.settings import GatewaySettings

log = logging.getLogger("mail_gateway.ingress")
TOO_MANY_SESSIONS = b"421 4.7.0 Too many connections, try again later\r\n"


class SessionLimit:
    """How many sessions are open; touched only from the event loop's thread, so no lock."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.active = 0

    def try_acquire(self) -> bool:
        if self.active >= self.maximum:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active -= 1


class IngressSMTP(SMTP):
    """aiosmtpd's SMTP protocol with a limit on concurrent sessions and a pausable command timeout."""

    def __init__(self, handler: Any, *, limit: SessionLimit, auth_without_tls: bool, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._limit = limit
        self._counted = False
        self._refused = False
        if auth_without_tls:
            # Passed to aiosmtpd as True and relaxed here: aiosmtpd warns on every connection about AUTH
            # without TLS, which start-up has already restricted to a loopback address.
            self._auth_require_tls = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None and not self._counted:  # a new connection, not the switch to TLS
            if not self._limit.try_acquire():
                self._refused = True
                transport.write(TOO_MANY_SESSIONS)  # type: ignore[attr-defined]
                transport.close()
                return
            self._counted = True
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        try:
            super().connection_lost(error)
        finally:
            if self._counted:
                self._counted = False
                self._limit.release()

    def eof_received(self) -> bool | None:
        if self._refused:
            return False
        return super().eof_received()

    def pause_timeout(self) -> None:
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()

    def resume_timeout(self) -> None:
        if self.transport is not None:
            self._reset_timeout()


class IngressController(Controller):
    """A ``Controller`` serving on a socket bound beforehand and building ``IngressSMTP`` sessions."""

    def __init__(self, handler: Any, sock: socket.socket, limit: SessionLimit, smtp_kwargs: dict[str, Any]) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, **smtp_kwargs)
        self._sock = sock
        self._limit = limit

    def factory(self) -> SMTP:
        return IngressSMTP(self.handler, limit=self._limit, **self.SMTP_kwargs)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock)


def bind(host: str, port: int) -> socket.socket:
    try:
        family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise ConfigurationError(
            f"the SMTP ingress cannot listen on {host}:{port} ({exc.strerror or exc}); set GATEWAY_SMTP_HOST "
            "and GATEWAY_SMTP_PORT to a free address and port", variable="GATEWAY_SMTP_PORT") from exc


class IngressServer:
    def __init__(self, settings: GatewaySettings, sender: Sender, *, port: int | None = None) -> None:
        """``port`` overrides ``GATEWAY_SMTP_PORT``; 0 picks a free port (``self.port`` tells which)."""
        check_exposure(settings)
        self.settings = settings
        self.sender = sender
        users = settings.smtp_users
        self._tls = server_tls_context(settings)
        self._limit = SessionLimit(settings.gateway_smtp_max_sessions)
        # One worker per session at most: a session waits for its delivery before it can send another.
        self._executor = ThreadPoolExecutor(settings.gateway_smtp_max_sessions, thread_name_prefix="smtp-relay")
        self.handler = RelayHandler(sender, self._executor, max_recipients=settings.gateway_smtp_max_recipients)
        self._smtp_kwargs: dict[str, Any] = {
            "server_hostname": socket.gethostname(),  # aiosmtpd would otherwise ask DNS on every connection
            "ident": "mail-gateway",
            # Like the backends, the ingress does not speak SMTPUTF8: a non-ASCII address is refused at MAIL or
            # RCPT (500) instead of failing at the upstream after DATA. 8-bit message bodies are fine.
            "enable_SMTPUTF8": False,
            "data_size_limit": settings.gateway_smtp_max_message_bytes,
            "timeout": settings.gateway_smtp_timeout,
            "tls_context": self._tls,
            "auth_required": bool(users),
            "auth_require_tls": True,
            "auth_without_tls": settings.gateway_smtp_allow_insecure_auth,
            "authenticator": Authenticator(users) if users else None,
            "auth_exclude_mechanism": [] if users else ["LOGIN", "PLAIN"],
        }
        self._controller: IngressController | None = None
        self.host = settings.gateway_smtp_host
        self.port = settings.gateway_smtp_port if port is None else port

    @property
    def active_sessions(self) -> int:
        return self._limit.active

    def start(self) -> IngressServer:
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._controller = IngressController(self.handler, sock, self._limit, self._smtp_kwargs)
        try:
            self._controller.start()
        except BaseException:
            self._controller.stop(no_assert=True)
            sock.close()
            raise
        log.info("SMTP ingress on %s:%d (backend %s, auth %s, starttls %s)", self.host, self.port,
                 self.sender.backend.name, "required" if self._smtp_kwargs["auth_required"] else "off",
                 "on" if self._tls else "off")
        return self

    def stop(self) -> None:
        """Stop listening, let the deliveries already running finish and answer, then end the sessions.

        A session that reaches the end of DATA meanwhile is answered 451, so its client keeps the message.
        """
        controller, self._controller = self._controller, None
        self.handler.stopping = True
        if controller is not None and controller.server is not None:
            controller.loop.call_soon_threadsafe(controller.server.close)
        self._executor.shutdown(wait=True)
        if controller is not None:
            controller.stop()

    def __enter__(self) -> IngressServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
