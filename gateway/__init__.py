"""mail-gateway: one HTTP API, an SMTP ingress and a Flask extension in front of pluggable mail backends.

The public API::

    from mail_gateway import MailGateway, create_app, GatewaySettings

Names are imported on first use, so importing a sub-package (``mail_gateway.settings``, or the pytest plugin
that pytest loads in every run) does not load Flask and the whole gateway with it.

The package's floors, each importing only those below it: ``errors`` (imports nothing) → ``settings`` →
``mail`` (addresses, composing, rendering) → ``backends`` → ``sending`` (the one send path) → the features:
``extension`` and ``app``, ``http``, ``outbox``, ``ingress``, ``cli``, ``testing``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mail_gateway.app import create_app
    from mail_gateway.extension import MailGateway
    from mail_gateway.settings import GatewaySettings

_PUBLIC = {
    "MailGateway": "mail_gateway.extension",
    "create_app": "mail_gateway.app",
    "GatewaySettings": "mail_gateway.settings",
}
__all__ = ["GatewaySettings", "MailGateway", "create_app"]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'mail_gateway' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
