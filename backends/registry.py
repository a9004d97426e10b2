"""Build the backend the settings select; every failure is a start-up ``ConfigurationError``.

Which backends exist is registered on the settings floor (``mail_gateway.settings.registration``: the built-in
ones, those registered at run time and those of the installed packages' ``mail_gateway.backends`` entry points),
since the settings resolve ``MAIL_URL``'s scheme and validate a backend's own settings; this module builds them,
each from what its registration says: its own settings, one subject of the gateway's (the built-in backends), or
else the whole ``GatewaySettings``. ``MAIL_BACKEND`` may also name a backend class by its dotted path, which then
receives ``GatewaySettings`` (a built-in backend's class named so is built as that backend, from its subject).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from mail_gateway.backends.base import EmailBackend
from mail_gateway.errors import ConfigurationError
from mail_gateway.settings.loading import backend_settings
from mail_gateway.settings.registration import BackendRegistration, find_backend, foreign_backend, registrations

if TYPE_CHECKING:
    from mail_gateway.settings import GatewaySettings


def _fix() -> str:
    names = ", ".join(registration.name for registration in registrations())
    return f"set MAIL_BACKEND to {names} or an importable package.module.ClassName"

_override_lock = threading.Lock()
_override: list[EmailBackend] = []


def import_backend_class(path: str) -> type[EmailBackend]:
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise ConfigurationError(f"MAIL_BACKEND={path!r} is not a backend; {_fix()}", variable="MAIL_BACKEND")
    try:
        module = import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"MAIL_BACKEND={path!r}: module {module_name!r} cannot be imported ({exc}); {_fix()}",
            variable="MAIL_BACKEND",
        ) from exc
    cls = getattr(module, class_name, None)
    # Another library's backend (registered with its names: flask-mailman's) is refused saying what it is.
    reason = foreign_backend(cls) if isinstance(cls, type) and not issubclass(cls, EmailBackend) else None
    if reason is not None:
        raise ConfigurationError(f"MAIL_BACKEND={path!r} {reason}", variable="MAIL_BACKEND")
    if not (isinstance(cls, type) and issubclass(cls, EmailBackend)):
        raise ConfigurationError(
            f"MAIL_BACKEND={path!r} is not a mail backend (a subclass of "
            f"mail_gateway.backends.base.EmailBackend); {_fix()}",
            variable="MAIL_BACKEND",
        )
    return cls


def create_backend(settings: GatewaySettings) -> EmailBackend:
    """The backend the settings select, built and checked (or the one ``backend_override`` imposes)."""
    with _override_lock:
        if _override:
            return _override[-1]
    registration = find_backend(settings.backend_name)
    if registration is None:
        cls = import_backend_class(settings.backend_name)
        registration = _subject_registration(cls)
        if registration is None:
            return cls(settings)
    return _build(registration, settings)


def _subject_registration(cls: type[EmailBackend]) -> BackendRegistration | None:
    """The registration that builds ``cls`` from a subject of the settings (a built-in backend's), if any."""
    path = f"{cls.__module__}.{cls.__qualname__}"
    for registration in registrations(installed=False):
        if registration.subject is not None and registration.backend in (cls, path):
            return registration
    return None


def _settings_for(registration: BackendRegistration, settings: GatewaySettings) -> Any:
    """What a registered backend is built from: its own settings, its subject's model, or ``GatewaySettings``."""
    if registration.settings is not None:
        return backend_settings(settings)
    if registration.subject is None:
        return settings
    subject = getattr(settings, registration.subject, None)
    if not isinstance(subject, BaseModel):
        raise ConfigurationError(f"the {registration.name} backend's registration names the subject "
                                 f"{registration.subject!r}, which the gateway's settings do not have; fix its "
                                 "package", variable="MAIL_BACKEND")
    return subject


def _build(registration: BackendRegistration, settings: GatewaySettings) -> EmailBackend:
    """A registered backend, built from what its registration says (``_settings_for``)."""
    factory: Any = registration.backend
    if isinstance(factory, str):
        factory = import_backend_class(factory)
    backend = factory(_settings_for(registration, settings))
    if not isinstance(backend, EmailBackend):
        raise ConfigurationError(f"the {registration.name} backend's registration built no mail backend (a "
                                 "subclass of mail_gateway.backends.base.EmailBackend); fix its package",
                                 variable="MAIL_BACKEND")
    return backend


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
