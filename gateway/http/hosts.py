"""Only allowed Host names are served: a web page the developer visits cannot read the API or the outbox through
DNS rebinding (its own name resolving to 127.0.0.1), since its requests carry its own name as Host.

``GATEWAY_ALLOWED_HOSTS`` names them; by default the listen address and the localhost names. Written here
rather than with Werkzeug's ``host_is_trusted``, which compares case-sensitively and cannot match an IPv6
literal such as ``[::1]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask

from mail_gateway.errors import ConfigurationError, FieldError
from mail_gateway.http.headers import one_value
from mail_gateway.http.problems import Problem

if TYPE_CHECKING:
    from mail_gateway.settings import GatewaySettings

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARDS = {"", "0.0.0.0", "::", "*"}


def host_name(header: str) -> str:
    """``Host`` without its port, lower-case, without brackets or a trailing dot."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    name = header.rpartition(":")[0] if header.count(":") == 1 else header
    return name.rstrip(".")


def allowed_hosts(settings: GatewaySettings) -> tuple[str, ...] | None:
    """The names served (a leading dot allows every subdomain), or None for any name (``*``)."""
    if settings.gateway_allowed_hosts:
        names = [name.strip().lower() for name in settings.gateway_allowed_hosts.split(",") if name.strip()]
        return None if "*" in names else tuple(names)
    listen = settings.gateway_host.strip().lower().strip("[]")
    if listen in WILDCARDS:
        raise ConfigurationError(
            f"GATEWAY_HOST={settings.gateway_host!r} listens on every address, so the names clients use cannot be "
            "guessed; set GATEWAY_ALLOWED_HOSTS to them, e.g. 'mail.example.com' (or '*' to serve any Host, "
            "behind a proxy that checks it)", variable="GATEWAY_ALLOWED_HOSTS")
    return tuple(dict.fromkeys((listen, *LOCAL_NAMES)))


def is_allowed(header: str, allowed: tuple[str, ...]) -> bool:
    name = host_name(header)
    return any(name == entry or (entry.startswith(".") and (name.endswith(entry) or name == entry[1:]))
               for entry in allowed)


def register_allowed_hosts(app: Flask, settings: GatewaySettings) -> None:
    """Refuse (400) every request whose Host is not allowed, or is sent more than once (RFC 9112 section 3.2 says
    400; with any name served too), before anything else looks at it."""
    allowed = allowed_hosts(settings)

    @app.before_request
    def _allowed_host() -> None:
        header = one_value("Host") or ""
        if allowed is not None and not is_allowed(header, allowed):
            said = (f"this gateway does not serve the host name {host_name(header)[:100]!r}; add it to "
                    "GATEWAY_ALLOWED_HOSTS if clients really use it")
            raise Problem(400, "Host not allowed", f"{said[0].upper()}{said[1:]}.", "host-not-allowed",
                          [FieldError("Host", said)])
