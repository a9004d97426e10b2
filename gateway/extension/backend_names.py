"""flask-mailman's ``MAIL_BACKEND`` names and classes, as the gateway's backends (registered on import).

A flask-mailman app names its backend ``locmem``, ``smtp``, a dotted path ``flask_mailman.backends.<name>``
(with or without ``.EmailBackend``) or the class itself (``app.config`` names a class by its path). Each maps
to the gateway's backend that does the same, so naming one never bypasses the gateway's send path; a backend
class of flask-mailman's kind from another package (Django's, a third party's) is refused saying so. The settings
learn these names through ``mail_gateway.settings.registration.register_aliases``: they work without them, and
the Flask extension, the app factory and the commands load this module, so each of them understands them.
"""

from __future__ import annotations

from mail_gateway.backends.base import EmailBackend
from mail_gateway.settings.registration import BackendAliases, register_aliases

# locmem keeps messages for tests, dummy drops them: the memory backend does the first and stands in for the
# second (it keeps a bounded copy and delivers nothing).
FLASK_MAILMAN_BACKENDS = {"locmem": "memory", "dummy": "memory", "smtp": "smtp", "console": "console",
                          "file": "file"}
_PACKAGE = "flask_mailman.backends."


def gateway_backend(value: str) -> str | None:
    """The gateway's name for a flask-mailman backend name or path, or None when ``value`` is neither."""
    if value.lower() in FLASK_MAILMAN_BACKENDS:
        return FLASK_MAILMAN_BACKENDS[value.lower()]
    if not value.startswith(_PACKAGE):
        return None
    name = value.removeprefix(_PACKAGE).removesuffix(".EmailBackend")
    if name not in FLASK_MAILMAN_BACKENDS:
        raise ValueError(f"{value!r} is not one of flask-mailman's backends ({', '.join(FLASK_MAILMAN_BACKENDS)})")
    return FLASK_MAILMAN_BACKENDS[name]


def refusal(cls: type) -> str | None:
    """Why ``cls``, a class with flask-mailman's (and Django's) backend method, cannot be the gateway's backend."""
    if issubclass(cls, EmailBackend) or not hasattr(cls, "send_messages"):
        return None
    return ("is a flask-mailman or Django backend, which would send around the gateway (no validation, no delivery "
            "log, none of its settings); use one of the gateway's backends, or port it to a subclass of "
            "mail_gateway.backends.base.EmailBackend that implements deliver()")


FLASK_MAILMAN = BackendAliases("flask-mailman", gateway_backend, refusal)
register_aliases(FLASK_MAILMAN)
