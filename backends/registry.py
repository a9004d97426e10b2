"""Pick and build the backend the settings select; every failure is a start-up ``ConfigurationError``."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from backends.base import EmailBackend
from backends.errors import ConfigurationError

if TYPE_CHECKING:
    from settings import GatewaySettings

BUILTIN = {
    "smtp": "backends.smtp.SmtpBackend",
    "console": "backends.console.ConsoleBackend",
    "file": "backends.file.FileBackend",
    "memory": "backends.memory.MemoryBackend",
}


def import_backend_class(path: str) -> type[EmailBackend]:
    module_name, _, class_name = path.rpartition(".")
    fix = "set MAIL_BACKEND to smtp, console, file, memory or an importable package.module.ClassName"
    try:
        module = import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"MAIL_BACKEND={path!r}: module {module_name!r} cannot be imported ({exc}); {fix}",
            variable="MAIL_BACKEND",
        ) from exc
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, EmailBackend)):
        raise ConfigurationError(
            f"MAIL_BACKEND={path!r} is not a mail backend (a subclass of backends.base.EmailBackend); {fix}",
            variable="MAIL_BACKEND",
        )
    return cls


def create_backend(settings: GatewaySettings) -> EmailBackend:
    name = settings.backend_name
    return import_backend_class(BUILTIN.get(name, name))(settings)
