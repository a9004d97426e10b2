"""Typed configuration: the ground the gateway stands on. Imports nothing of the project but its errors.

``GatewaySettings`` gathers the settings of each subject (core and local backends, SMTP, the HTTP API, the
SMTP ingress, the outbox page), read from environment variables and a ``.env`` file. Every field's
``description`` is the fix shown when its value is invalid, so a start-up error names the variable and says
what to set it to. The rules that join several subjects live on that one class (``settings/gateway.py``).
"""

from mail_gateway.settings.gateway import GatewaySettings
from mail_gateway.settings.loading import load_settings

__all__ = ["GatewaySettings", "load_settings"]
