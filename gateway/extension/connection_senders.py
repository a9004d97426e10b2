"""Which sender a ``get_connection(backend, **options)`` gets: the app's own, or one built for that call.

flask-mailman lets a caller name a backend (``'locmem'``, ``'smtp'``, a dotted path, a class) and pass
per-connection options (``host``, ``port``, ``username``, ``password``, ``use_tls``, ``use_ssl``, ``timeout``;
several accounts from one app). The gateway honours both through its own backends and one send path: a name
maps to the gateway's backend that does the same, and options are the settings of that name, validated as
the environment's are. An option the named backend does not use (``username`` of a memory connection) is
ignored, as flask-mailman's locmem ignores it, and such a connection shares that backend's sender: every message
of the memory backend lands in the one ``mail.outbox``. An unknown option is ignored with a warning, as
flask-mailman ignores it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from mail_gateway.assembly import build_sender
from mail_gateway.backends.console import ConsoleBackend
from mail_gateway.errors import ConfigurationError
from mail_gateway.sending import Sender
from mail_gateway.settings import GatewaySettings, load_settings
from mail_gateway.settings.core import CoreSettings

# flask-mailman's per-connection options, and the setting each one is.
OPTIONS = {"host": "mail_server", "port": "mail_port", "username": "mail_username", "password": "mail_password",
           "use_tls": "mail_use_tls", "use_ssl": "mail_use_ssl", "timeout": "mail_timeout",
           "ssl_keyfile": "mail_ssl_keyfile", "ssl_certfile": "mail_ssl_certfile", "file_path": "mail_file_path"}
_SMTP_OPTIONS = set(OPTIONS) - {"file_path"}
# The options each built-in backend uses (the console's stream aside); a backend of another package gets them all.
_USED = {"smtp": frozenset(_SMTP_OPTIONS), "file": frozenset({"file_path"}), "memory": frozenset(),
         "console": frozenset()}


class UnknownBackendError(ConfigurationError, RuntimeError):
    """A backend named at run time (``get_connection('name')``) that the gateway does not have; a
    ``RuntimeError`` too, which is what flask-mailman raised and its callers catch."""


@dataclass(frozen=True)
class ConnectionSender:
    sender: Sender
    owned: bool  # built for one connection, so closed with it


def backend_name(backend: Any) -> str:
    """The gateway's name for what flask-mailman accepts as a backend: a name, a dotted path or a class."""
    if isinstance(backend, type):
        backend = f"{backend.__module__}.{backend.__qualname__}"
    try:
        name = CoreSettings.model_validate({"mail_backend": str(backend)}).mail_backend
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise _unknown(backend) from exc
    return str(name)


def _unknown(backend: Any) -> UnknownBackendError:
    # flask-mailman's wording, which its users' tests match, and the gateway's fix.
    return UnknownBackendError(f"The available built-in mail backends are smtp, console, file and memory (locmem); "
                               f"get_connection(backend={backend!r}) names none of them and isn't an importable "
                               "package.module.ClassName: set backend (or MAIL_BACKEND) to one of them",
                               variable="backend")


def smtp_base(settings: GatewaySettings) -> dict[str, Any]:
    """The configured server as separate settings, for options to change (a MAIL_URL of one server counts)."""
    if settings.mail_url is None or not settings.mail_url.upstreams:
        return {}
    upstreams = settings.mail_url.upstreams
    if len(upstreams) > 1:
        raise ConfigurationError("per-connection SMTP options need one server, and MAIL_URL lists several; pass "
                                 "host= (and port=, username=, ...) of the one to use", variable="MAIL_URL")
    upstream = upstreams[0]
    return {"mail_url": None, "mail_server": upstream.host, "mail_port": upstream.port,
            "mail_use_tls": upstream.security == "starttls", "mail_use_ssl": upstream.security == "ssl",
            "mail_username": upstream.username, "mail_password": upstream.password}


def _sender_for(state: Any, name: str, options: dict[str, Any], stream: Any = None,
                settings: GatewaySettings | None = None) -> Sender:
    settings = state.settings if settings is None else settings
    # What was set (environment, app.config, arguments), not every default: settings that may only be set in some
    # modes (MAIL_RETRY_* is refused with queued delivery) must not look set because the app had their defaults.
    values = {name: getattr(settings, name) for name in settings.model_fields_set}
    if settings.mail_url is not None and settings.mail_url.backend != name:
        values["mail_url"] = None  # it names another backend than the one asked for
    if options.keys() & _SMTP_OPTIONS:
        values.update(smtp_base(settings))
    # Naming a backend in the call is explicit: it is honoured even where TESTING or MAIL_SUPPRESS_SEND would
    # have kept mail in memory.
    values.update({OPTIONS[option]: value for option, value in options.items()}, mail_backend=name,
                  mail_suppress_send=None)
    if stream is not None and settings.mail_console_format is None:
        values["mail_console_format"] = "raw"  # a stream handed over is read by code, not by a person
    try:
        built = load_settings(_env_file=None, **values)
        backend = ConsoleBackend(built.console, stream=stream) if stream is not None else None
        # Direct even with queued delivery: the workers deliver through the app's backend, not this one.
        return build_sender(built, backend, store=state.store, direct=True)[0]
    except ConfigurationError as exc:
        if exc.variable == "MAIL_BACKEND":
            raise _unknown(name) from exc
        given = ", ".join([f"backend={name!r}", *(f"{option}=..." for option in options)])
        raise ConfigurationError(f"get_connection({given}): {exc}", variable=exc.variable) from exc


def connection_sender(state: Any, backend: Any, options: dict[str, Any]) -> ConnectionSender:
    """The sender of one ``get_connection()``; ``state`` is the app's ``Runtime``."""
    options = {option: value for option, value in options.items() if value is not None}
    stream = options.pop("stream", None)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:  # flask-mailman (and Django) accept and ignore them; said, so a misspelt option is noticed
        warnings.warn(f"get_connection() ignores {', '.join(unknown)}: it takes backend, fail_silently, stream and "
                      f"{', '.join(OPTIONS)}", UserWarning, stacklevel=4)
        options = {option: value for option, value in options.items() if option in OPTIONS}
    name = backend_name(backend) if backend is not None else state.settings.backend_name
    if stream is not None and name != "console":
        raise TypeError(f"get_connection(stream=...) is an option of the console backend, not of {name}")
    if name in _USED:
        # Another backend's options mean nothing to this one (flask-mailman's locmem ignores them too): such a
        # connection shares the backend's one sender, so a memory backend keeps all its mail in the one outbox.
        options = {option: value for option, value in options.items() if option in _USED[name]}
    if options or stream is not None:
        return ConnectionSender(_sender_for(state, name, options, stream), owned=True)
    if name == state.settings.backend_name:
        return ConnectionSender(state.sender, owned=False)
    # One per name and app, kept: a memory backend keeps its mail, an SMTP one its pool.
    return ConnectionSender(state.alternate(name, lambda settings: _sender_for(state, name, {}, settings=settings)),
                            owned=False)


def default_backend(settings: GatewaySettings, backend: Any, suppressed: bool | None) -> Any:
    """What a ``get_connection()`` naming no backend uses: the app's ``backend``, unless ``suppress`` was assigned
    (``suppressed``), as Flask-Mail's tests do: True keeps what is sent in memory, False sends it again."""
    if suppressed:
        return "memory"
    if suppressed is False and backend == settings.backend_name == "memory" and not settings.backend_named:
        # In memory only because TESTING or MAIL_SUPPRESS_SEND said so: the backend the settings give without that.
        return settings.model_copy(update={"mail_suppress_send": False}).backend_name
    return backend
