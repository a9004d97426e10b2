"""What keeps the SMTP ingress from being an open relay: where it may listen, whether AUTH is required, and
STARTTLS (how AUTH itself is checked and kept from being guessed: ``ingress.auth``).

Checked when the ingress starts; every refusal is a ``ConfigurationError`` naming the variable to change.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from typing import TYPE_CHECKING

from mail_gateway.errors import ConfigurationError

if TYPE_CHECKING:
    from mail_gateway.settings import GatewaySettings

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
    _refuse_unused_allowances(settings, kind, has_users)
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


def _refuse_unused_allowances(settings: GatewaySettings, kind: str, has_users: bool) -> None:
    """An allowance that the rest of the configuration leaves nothing to allow is refused, not ignored: whoever set
    it expects a behaviour they would not get."""
    host = settings.gateway_smtp_host
    if settings.gateway_smtp_allow_insecure_auth and not has_users:
        raise ConfigurationError(
            "GATEWAY_SMTP_ALLOW_INSECURE_AUTH is true but GATEWAY_SMTP_USERS is not set, so AUTH is not offered and "
            "it would change nothing; set GATEWAY_SMTP_USERS, or set it to false",
            variable="GATEWAY_SMTP_ALLOW_INSECURE_AUTH")
    if settings.gateway_smtp_allow_private_without_auth and has_users:
        raise ConfigurationError(
            "GATEWAY_SMTP_ALLOW_PRIVATE_WITHOUT_AUTH is true but GATEWAY_SMTP_USERS is set, so every client must "
            "AUTH and it would change nothing; leave GATEWAY_SMTP_USERS unset to let the private network send "
            "without AUTH, or set it to false", variable="GATEWAY_SMTP_ALLOW_PRIVATE_WITHOUT_AUTH")
    if settings.gateway_smtp_allow_private_without_auth and kind == "loopback":
        raise ConfigurationError(
            f"GATEWAY_SMTP_ALLOW_PRIVATE_WITHOUT_AUTH is true but GATEWAY_SMTP_HOST={host!r} is a loopback address, "
            "which only this host can reach; set GATEWAY_SMTP_HOST to this host's private address, or set it to "
            "false", variable="GATEWAY_SMTP_ALLOW_PRIVATE_WITHOUT_AUTH")


def server_tls_context(settings: GatewaySettings) -> ssl.SSLContext | None:
    """The server context for STARTTLS, loaded now so a bad certificate stops start-up."""
    cert, key = settings.gateway_smtp_tls_cert, settings.gateway_smtp_tls_key
    if cert is None or key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        # An encrypted key would make OpenSSL ask for its passphrase on the terminal; refused instead.
        context.load_cert_chain(cert, key, password=lambda: b"")
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise ConfigurationError(
            f"GATEWAY_SMTP_TLS_CERT={str(cert)!r} with GATEWAY_SMTP_TLS_KEY={str(key)!r} cannot be loaded "
            f"({reason}); set them to a readable PEM certificate and its unencrypted private key",
            variable="GATEWAY_SMTP_TLS_CERT") from exc
    return context
