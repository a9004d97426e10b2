"""Typed configuration: the ground the gateway stands on. Imports nothing of the project but its errors.

``GatewaySettings`` gathers the settings of each subject (core, SMTP, the HTTP API, the SMTP ingress, the outbox
page, sender rules, Flask-Mail's names, the store, the queue, webhooks, DKIM signing, and the console, file and
memory backends), read under their flat names from environment variables, a ``.env`` file and a Flask app's
config, and hands out each subject's own immutable model as an attribute: ``settings.smtp``, ``settings.http``,
``settings.ingress``, ``settings.store``, ``settings.queue``, ``settings.webhooks``, ``settings.outbox``...
(``settings/subjects.py``). Each built-in backend is built from its subject alone. Every field's
``description`` is the fix shown when its value is invalid, so a start-up error names the variable and says
what to set it to. The rules that join several subjects live on that one class (``settings/gateway.py``).
"""

from mail_gateway.settings.gateway import GatewaySettings
from mail_gateway.settings.loading import load_settings

__all__ = ["GatewaySettings", "load_settings"]
