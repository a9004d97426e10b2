"""Which backends exist: each is registered with its name, the ``MAIL_URL`` schemes that select it, its own
settings, and what builds it. The built-in backends are registered here like any other; a third-party package
registers through the ``mail_gateway.backends`` entry point group (its entry point names a
``BackendRegistration``), or at run time with ``register_backend``.

The registration lives on the settings floor because settings choose the backend: ``MAIL_URL``'s scheme is
resolved when the settings are read, and a backend's own settings are validated then, at start-up. So a
registration names its backend by a dotted path or holds the class itself, and this module imports none of it:
``mail_gateway.backends.registry`` (a floor above) builds what is registered here. Another library's names for
backends (flask-mailman's ``locmem``) are registered as ``BackendAliases`` by the package that speaks its API
(``mail_gateway.extension.backend_names``); the settings know none of them themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import SplitResult

from pydantic_settings import BaseSettings

from mail_gateway.errors import ConfigurationError

ENTRY_POINT_GROUP = "mail_gateway.backends"


@dataclass(frozen=True)
class BackendRegistration:
    """One backend. ``backend`` builds it: a dotted path ``package.module.ClassName`` or the class (any callable).

    With ``settings`` (a pydantic-settings ``BaseSettings`` with an ``env_prefix`` of its own, such as ``ACME_``)
    the backend is built from those settings alone, read from the environment and ``.env`` and validated at
    start-up. With ``subject`` instead, it is built from the ``GatewaySettings`` attribute of that name, one
    subject's model (the built-in backends: ``smtp``, ``console``, ``file``, ``memory``; settings/subjects.py).
    With neither, it receives the whole ``GatewaySettings``.
    ``url_values`` turns a ``MAIL_URL`` of one of ``schemes`` (already split) into values of ``settings``,
    which win over the environment's; it raises ``ValueError`` with a reason that never repeats the URL.
    Without it the URL must be ``scheme://`` alone."""

    name: str
    backend: str | Callable[[Any], Any]
    schemes: tuple[str, ...] = ()
    settings: type[BaseSettings] | None = None
    url_values: Callable[[SplitResult], Mapping[str, Any]] | None = None
    subject: str | None = None

    def __post_init__(self) -> None:
        if self.settings is not None and self.subject is not None:
            raise ConfigurationError(f"the {self.name} backend's registration names both settings of its own and "
                                     "a subject of the gateway's; give it one of the two", variable="MAIL_BACKEND")


BUILTIN = (
    BackendRegistration("smtp", "mail_gateway.backends.smtp.SmtpBackend", ("smtp", "smtps"), subject="smtp"),
    BackendRegistration("console", "mail_gateway.backends.console.ConsoleBackend", ("console",), subject="console"),
    BackendRegistration("file", "mail_gateway.backends.file.FileBackend", ("file",), subject="file"),
    BackendRegistration("memory", "mail_gateway.backends.memory.MemoryBackend", ("memory",), subject="memory"),
)

_lock = threading.Lock()
_registered: dict[str, BackendRegistration] = {}


def register_backend(registration: BackendRegistration) -> None:
    """Register a backend in this process (an entry point does the same for an installed package)."""
    with _lock:
        if registration.name in {r.name for r in (*BUILTIN, *_registered.values())}:
            raise ConfigurationError(f"a backend named {registration.name!r} is already registered; choose "
                                     "another name", variable="MAIL_BACKEND")
        _registered[registration.name] = registration


def unregister_backend(name: str) -> None:
    with _lock:
        _registered.pop(name, None)


def _installed() -> list[BackendRegistration]:
    """The registrations of the installed packages' entry points. Read only when a name or scheme is not one
    of the built-in or registered ones, so a broken package stops only the start-up that would use it."""
    found = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            registration = point.load()
        except Exception as exc:  # whatever the package raises on import: one line naming it
            raise ConfigurationError(f"the {ENTRY_POINT_GROUP} entry point {point.name!r} ({point.value}) cannot be "
                                     f"loaded ({type(exc).__name__}: {exc}); reinstall or uninstall its package",
                                     variable="MAIL_BACKEND") from exc
        if not isinstance(registration, BackendRegistration):
            raise ConfigurationError(f"the {ENTRY_POINT_GROUP} entry point {point.name!r} ({point.value}) is not a "
                                     "mail_gateway.settings.registration.BackendRegistration; fix its package",
                                     variable="MAIL_BACKEND")
        found.append(registration)
    return found


def _not_theirs(cls: type) -> str | None:
    return None


@dataclass(frozen=True)
class BackendAliases:
    """The names another library gives its backends, each standing for a registered one (flask-mailman's
    ``locmem`` for ``memory``), so configuration written for that library selects the gateway's backend.

    ``resolve`` turns a value of ``MAIL_BACKEND`` into the registered backend's name: None when the value is not
    the library's, ``ValueError`` (its reason) when it is but no backend of the gateway does the same.
    ``refuse`` says why a class ``MAIL_BACKEND`` names by its path is the library's own kind of backend, which
    would send around the gateway (None when it is not). The settings work without any."""

    library: str
    resolve: Callable[[str], str | None]
    refuse: Callable[[type], str | None] = _not_theirs


_aliases: dict[str, BackendAliases] = {}


def register_aliases(aliases: BackendAliases) -> None:
    """Let ``MAIL_BACKEND`` name backends as ``aliases.library`` does (registering a library again replaces it)."""
    with _lock:
        _aliases[aliases.library] = aliases


def _alias_sets() -> list[BackendAliases]:
    with _lock:
        return list(_aliases.values())


def resolve_alias(value: str) -> str | None:
    """The registered backend's name another library's ``value`` stands for, or None; ``ValueError`` when it is
    that library's name for a backend the gateway does not have."""
    for aliases in _alias_sets():
        name = aliases.resolve(value)
        if name is not None:
            return name
    return None


def foreign_backend(cls: type) -> str | None:
    """Why ``cls`` is another library's backend, not the gateway's, or None."""
    for aliases in _alias_sets():
        reason = aliases.refuse(cls)
        if reason is not None:
            return reason
    return None


def registrations(*, installed: bool = True) -> list[BackendRegistration]:
    """Every registered backend: built-in, registered at run time, then (``installed``) the entry points'."""
    with _lock:
        known = [*BUILTIN, *_registered.values()]
    return known + (_installed() if installed else [])


def _first(match: Callable[[BackendRegistration], bool]) -> BackendRegistration | None:
    for installed in (False, True):
        for registration in registrations(installed=installed):
            if match(registration):
                return registration
    return None


def find_backend(name: str) -> BackendRegistration | None:
    """The backend registered as ``name`` (case-insensitive), or None."""
    return _first(lambda registration: registration.name.lower() == name.lower())


def find_scheme(scheme: str) -> BackendRegistration | None:
    """The backend ``MAIL_URL``'s ``scheme`` selects, or None."""
    return _first(lambda registration: scheme.lower() in registration.schemes)


def own_variable_names(registration: BackendRegistration) -> set[str]:
    """The environment variables a backend's own settings are read from, upper-case."""
    if registration.settings is None:
        return set()
    prefix = str(registration.settings.model_config.get("env_prefix") or "")
    return {(prefix + name).upper() for name in registration.settings.model_fields}
