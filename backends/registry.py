"""Pick and build the backend the settings select; every failure is a start-up ``ConfigurationError``.

``BUILTIN`` is the one list of the built-in backends' names.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module
from typing import TYPE_CHECKING

from mail_gateway.backends.base import EmailBackend
from mail_gateway.errors import ConfigurationError

if TYPE_CHECKING:
    from mail_gateway.settings import GatewaySettings

BUILTIN = {
    "smtp": "mail_gateway.backends.smtp.SmtpBackend",
    "console": "mail_gateway.backends.console.ConsoleBackend",
    "file": "mail_gateway.backends.file.FileBackend",
    "memory": "mail_gateway.backends.memory.MemoryBackend",
}
_FIX = f"set MAIL_BACKEND to {', '.join(BUILTIN)} or an importable package.module.ClassName"

_override_lock = threading.Lock()
_override: list[EmailBackend] = []


def import_backend_class(path: str) -> type[EmailBackend]:
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise ConfigurationError(f"MAIL_BACKEND={path!r} is not a backend; {_FIX}", variable="MAIL_BACKEND")
    try:
        module = import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"MAIL_BACKEND={path!r}: module {module_name!r} cannot be imported ({exc}); {_FIX}",
            variable="MAIL_BACKEND",
        ) from exc
    cls = getattr(module, class_name, None)
    if isinstance(cls, type) and not issubclass(cls, EmailBackend) and hasattr(cls, "send_messages"):
        raise ConfigurationError(
            f"MAIL_BACKEND={path!r} is a flask-mailman or Django backend, which would send around the gateway "
            "(no validation, no delivery log, none of its settings); use one of the gateway's backends, or port "
            "it to a subclass of mail_gateway.backends.base.EmailBackend that implements deliver()",
            variable="MAIL_BACKEND",
        )
    if not (isinstance(cls, type) and issubclass(cls, EmailBackend)):
        raise ConfigurationError(
            f"MAIL_BACKEND={path!r} is not a mail backend (a subclass of "
            f"mail_gateway.backends.base.EmailBackend); {_FIX}",
            variable="MAIL_BACKEND",
        )
    return cls


def create_backend(settings: GatewaySettings) -> EmailBackend:
    """The backend the settings select, built and checked (or the one ``backend_override`` imposes)."""
    with _override_lock:
        if _override:
            return _override[-1]
    name = settings.backend_name
    return import_backend_class(BUILTIN.get(name, name))(settings)


def active_override() -> EmailBackend | None:
    """The backend ``backend_override`` imposes right now, or None."""
    with _override_lock:
        return _override[-1] if _override else None


@contextmanager
def backend_override(backend: EmailBackend) -> Iterator[EmailBackend]:
    """For tests: every backend created while the block runs, in any thread, is ``backend``, and every
    ``Sender`` delivers to it, however long before the block it was built.

    The ``mail_outbox`` pytest fixture uses it so that no app delivers for real during a test.
    """
    with _override_lock:
        _override.append(backend)
    try:
        yield backend
    finally:
        with _override_lock:
            _override.remove(backend)
