"""What keeps the SMTP ingress from being an open relay: where it may listen, AUTH, and STARTTLS.

Checked when the ingress starts; every refusal is a ``ConfigurationError`` naming the variable to change.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import socket
import ssl
from typing import TYPE_CHECKING, Any

from aiosmtpd.smtp import AuthResult, LoginPassword

from mail_gateway.errors import ConfigurationError
from mail_gateway.ingress.handler import describe_peer

if TYPE_CHECKING:
    from mail_gateway.settings import GatewaySettings

log = logging.getLogger("mail_gateway.ingress")

WILDCARDS = {"", "0.0.0.0", "::", "*"}


def exposure(host: str) -> str:
    """``loopback``, ``private`` or ``public`` for the address (or name) the ingress would listen on.

    A wildcard address listens on every interface, public ones included. A name counts as its most
    exposed address.
    """
    if host in WILDCARDS:
        return "public"
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigurationError(f"GATEWAY_SMTP_HOST={host!r} cannot be resolved ({exc}); set it to an address "
                                 "such as 127.0.0.1", variable="GATEWAY_SMTP_HOST") from exc
    kinds = set()
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address.is_loopback:
            kinds.add("loopback")
        elif address.is_private or address.is_link_local:
            kinds.add("private")
        else:
            kinds.add("public")
    for kind in ("public", "private", "loopback"):
        if kind in kinds:
            return kind
    return "public"


def check_exposure(settings: GatewaySettings) -> None:
    """Refuse a configuration that would relay mail for anyone who can reach the port."""
    host = settings.gateway_smtp_host
    kind = exposure(host)
    has_users = bool(settings.smtp_users)
    has_tls = settings.gateway_smtp_tls_cert is not None
    if not has_users and kind == "public":
        raise ConfigurationError(
            f"GATEWAY_SMTP_HOST={host!r} is reachable from other networks and GATEWAY_SMTP_USERS is not set, so "
            "the ingress would be an open relay; set GATEWAY_SMTP_USERS (with GATEWAY_SMTP_TLS_CERT/_KEY) or "
            "listen on 127.0.0.1", variable="GATEWAY_SMTP_HOST")
    if not has_users and kind == "private" and not settings.gateway_smtp_allow_private_without_auth:
        raise ConfigurationError(
            f"GATEWAY_SMTP_HOST={host!r} is not a loopback address and GATEWAY_SMTP_USERS is not set; set "
            "GATEWAY_SMTP_USERS, listen on 127.0.0.1, or, when every host of that private network may send, "
            "set GATEWAY_SMTP_ALLOW_PRIVATE_WITHOUT_AUTH=true", variable="GATEWAY_SMTP_HOST")
    if settings.gateway_smtp_allow_insecure_auth and kind != "loopback":
        raise ConfigurationError(
            f"GATEWAY_SMTP_ALLOW_INSECURE_AUTH is true but GATEWAY_SMTP_HOST={host!r} is not a loopback "
            "address; passwords would cross the network in clear text, so set it to false and configure "
            "GATEWAY_SMTP_TLS_CERT/_KEY", variable="GATEWAY_SMTP_ALLOW_INSECURE_AUTH")
    if has_users and not has_tls and not settings.gateway_smtp_allow_insecure_auth:
        raise ConfigurationError(
            "GATEWAY_SMTP_USERS is set but AUTH is only offered over TLS; set GATEWAY_SMTP_TLS_CERT and "
            "GATEWAY_SMTP_TLS_KEY (or, for development on a loopback address, GATEWAY_SMTP_ALLOW_INSECURE_AUTH="
            "true)", variable="GATEWAY_SMTP_TLS_CERT")


def server_tls_context(settings: GatewaySettings) -> ssl.SSLContext | None:
    """The server context for STARTTLS, loaded now so a bad certificate stops start-up."""
    cert, key = settings.gateway_smtp_tls_cert, settings.gateway_smtp_tls_key
    if cert is None or key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise ConfigurationError(
            f"GATEWAY_SMTP_TLS_CERT={str(cert)!r} with GATEWAY_SMTP_TLS_KEY={str(key)!r} cannot be loaded "
            f"({reason}); set them to a readable PEM certificate and its private key",
            variable="GATEWAY_SMTP_TLS_CERT") from exc
    return context


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
        log.warning("AUTH %s refused for a client at %s", mechanism, describe_peer(session.peer))
        return AuthResult(success=False, handled=False)

    def __repr__(self) -> str:
        return f"<Authenticator users={len(self._users)}>"
