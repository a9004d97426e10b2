"""Run the SMTP ingress: aiosmtpd on its own thread and event loop, with the gateway's limits and security.

``IngressServer(settings, sender).start()`` checks the configuration, binds the port (so a port in use is a
start-up error, and port 0 picks a free one) and serves until ``stop()``. The sender (and its backend) is the
one the HTTP side uses when both run in one process.
"""

from __future__ import annotations

import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from mail_gateway.errors import ConfigurationError
from mail_gateway.ingress.auth import Authenticator, AuthFailures, hide_client_secrets
from mail_gateway.ingress.bounces import BounceMailbox
from mail_gateway.ingress.handler import LocalMailbox, RelayHandler
from mail_gateway.ingress.inbound import InboundMailbox
from mail_gateway.ingress.security import check_exposure, server_tls_context
from mail_gateway.ingress.sessions import IngressSMTP, SessionLimit
from mail_gateway.ingress.unsubscribe import UnsubscribeMailbox
from mail_gateway.mail.unsubscribe import TokenSigner
from mail_gateway.sending import Sender
from mail_gateway.store.database import Store

if TYPE_CHECKING:
    from mail_gateway.settings import GatewaySettings

log = logging.getLogger("mail_gateway.ingress")


class IngressController(Controller):
    """A ``Controller`` serving on a socket bound beforehand and building ``IngressSMTP`` sessions."""

    def __init__(self, handler: Any, sock: socket.socket, session_kwargs: dict[str, Any],
                 smtp_kwargs: dict[str, Any]) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, **smtp_kwargs)
        self._sock = sock
        self._session_kwargs = session_kwargs

    def factory(self) -> SMTP:
        return IngressSMTP(self.handler, **self._session_kwargs, **self.SMTP_kwargs)

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


def local_mailboxes(settings: GatewaySettings, store: Store | None) -> list[LocalMailbox]:
    """The addresses the ingress receives mail for itself: the bounce domain's (unsubscribe mail, then reports),
    then the inbound routes'."""
    if store is None:
        return []
    found: list[LocalMailbox] = []
    signer = TokenSigner.configured(settings.unsubscribe)
    if settings.gateway_bounce_domain is not None and signer is not None:
        found.append(UnsubscribeMailbox(settings.gateway_bounce_domain, store, signer, settings.gateway_webhook_url))
    if settings.gateway_bounce_domain is not None:
        found.append(BounceMailbox(settings.gateway_bounce_domain, store, settings.gateway_webhook_url,
                                   settings.gateway_suppression_expiry, direct_tokens=not settings.queued))
    if settings.inbound_routes:
        found.append(InboundMailbox(settings.inbound_routes, store))
    return found


class IngressServer:
    def __init__(self, settings: GatewaySettings, sender: Sender, *, port: int | None = None,
                 store: Store | None = None) -> None:
        """``port`` overrides ``GATEWAY_SMTP_PORT``; 0 picks a free port (``self.port`` tells which). ``store``
        records bounces (default: the sender's queue store, else one opened on GATEWAY_STORE_URL)."""
        check_exposure(settings)
        self.settings = settings
        self.sender = sender
        self._own_store: Store | None = None
        if store is None and (settings.gateway_bounce_domain is not None or settings.inbound_routes):
            store = sender.spool.store if sender.spool is not None else None
            if store is None:  # direct delivery: bounces are recorded in the store all the same
                store = self._own_store = Store(settings.store_url)
        local = local_mailboxes(settings, store)
        users = settings.smtp_users
        self._tls = server_tls_context(settings)
        self._limit = SessionLimit(settings.gateway_smtp_max_sessions, settings.gateway_smtp_max_sessions_per_address)
        self._session_kwargs: dict[str, Any] = {
            "limit": self._limit, "auth_failures": AuthFailures(),
            "limits": {"start": settings.gateway_smtp_start_timeout,
                       "session": settings.gateway_smtp_max_session_seconds,
                       "auth_failures": settings.gateway_smtp_max_auth_failures}}
        # One worker per session at most: a session waits for its delivery before it can send another.
        self._executor = ThreadPoolExecutor(settings.gateway_smtp_max_sessions, thread_name_prefix="smtp-relay")
        self.handler = RelayHandler(sender, self._executor, max_recipients=settings.gateway_smtp_max_recipients,
                                    local=local, auth_required=bool(users) and bool(local))
        self._smtp_kwargs: dict[str, Any] = {
            "server_hostname": socket.gethostname(),  # aiosmtpd would otherwise ask DNS on every connection
            "ident": "mail-gateway",
            # SMTPUTF8 addresses are taken (declared at MAIL FROM, see the handler) and relayed only to an
            # upstream that announces SMTPUTF8 too (mail_gateway.backends.smtp.extensions); 8-bit bodies likewise.
            "enable_SMTPUTF8": True,
            "data_size_limit": settings.gateway_smtp_max_message_bytes,
            "timeout": settings.gateway_smtp_timeout,
            "tls_context": self._tls,
            "auth_required": bool(users) and not local,  # else asked for per recipient (RelayHandler)
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
        hide_client_secrets()
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._controller = IngressController(self.handler, sock, self._session_kwargs, self._smtp_kwargs)
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
        if self._own_store is not None:
            self._own_store.close()

    def __enter__(self) -> IngressServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
