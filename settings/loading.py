"""Build settings from the environment, turning validation errors into one short message a person can act on.

The environment's ``GATEWAY_*`` names are the gateway's alone, so one that is no setting (most likely misspelt)
stops start-up. ``MAIL_*`` variables of the environment may be another program's (a mail client's, cron's), so
only an app's ``app.config``, where both prefixes are the gateway's, refuses an unknown ``MAIL_*`` key.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import SecretBytes, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from mail_gateway.errors import ConfigurationError
from mail_gateway.settings.app_config import not_a_setting, reading_app_config, setting_names
from mail_gateway.settings.gateway import GatewaySettings
from mail_gateway.settings.mail_url import MailUrl
from mail_gateway.settings.registration import BackendRegistration, find_backend, own_variable_names, registrations
from mail_gateway.settings.wording import must_be, worded

OWN_PREFIX = "GATEWAY_"
_SECRET_TYPES = (SecretStr, SecretBytes, MailUrl)
_SHOWN = 40  # the most characters of a rejected value repeated in the message
_ENV_FILE = GatewaySettings.model_config.get("env_file")


def _field(name: str) -> FieldInfo | None:
    """The field read under ``name``: its own name or an earlier one."""
    for field_name, field in GatewaySettings.model_fields.items():
        if name == field_name or name in getattr(field.validation_alias, "choices", ()):
            return field
    return None


def _is_secret(field: FieldInfo | None) -> bool:
    """Whether a value of ``field`` may be secret (a password, a key, a URL that carries one); unknown counts."""
    if field is None:
        return True
    pending: list[Any] = [field.annotation]
    while pending:
        kind = pending.pop()
        if isinstance(kind, type) and issubclass(kind, _SECRET_TYPES):
            return True
        pending += typing.get_args(kind)
    return False


def _reason(item: Mapping[str, Any], where: str, field: FieldInfo | None) -> str:
    fix = field.description if field is not None and field.description else "correct it"
    if not worded(item):  # a rule of the gateway's own, whose message never repeats the value
        return f"{where} is invalid ({must_be(item)}); {fix}"
    got = ""
    if item["type"] != "missing" and "input" in item and not _is_secret(field):
        shown = repr(item["input"])
        got = f" (got {shown if len(shown) <= _SHOWN else shown[:_SHOWN - 3] + '...'})"
    return f"{where} {must_be(item)}{got}; {fix}"


def describe_validation_error(error: ValidationError, from_app_config: Collection[str] = ()) -> tuple[str, str | None]:
    """One line per invalid variable, naming it (as ``app.config['KEY']`` when that is where it was set), what
    it must be, and its fix; never the value of a secret."""
    lines: list[str] = []
    first_variable: str | None = None
    for item in error.errors(include_url=False, include_input=True):
        loc = item.get("loc") or ()
        if not loc:  # a cross-field rule: its message already names the variables and the fix
            lines.append(must_be(item))
            continue
        variable, field = str(loc[0]).upper(), _field(str(loc[0]))
        first_variable = first_variable or variable
        where = f"app.config[{variable!r}]" if variable in from_app_config else variable
        if variable in from_app_config and item["type"] == "string_type" and isinstance(item.get("input"), float | int):
            # A number or true/false where text was meant: most likely a variable app.config.from_prefixed_env()
            # read as JSON (1.50 -> 1.5), whose text is lost; the value is never shown, it may be a password.
            lines.append(f"{where} must be text, not a number or true/false (app.config.from_prefixed_env() reads "
                         f"each variable as JSON); quote it, e.g. FLASK_{variable}='\"...\"', or set a string")
            continue
        lines.append(_reason(item, where, field))
    return "\n".join(lines), first_variable


def _dotenv_files(env_file: Any) -> list[Path]:
    files = env_file if isinstance(env_file, (list, tuple)) else [env_file]
    found = [Path(name).expanduser() for name in files if name is not None and Path(name).expanduser().is_file()]
    for path in found:  # read as UTF-8 (env_file_encoding); undecodable, it ended in a traceback deep in dotenv
        data = path.read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[:exc.start].count(b"\n") + 1
            raise ConfigurationError(f"{path} is not UTF-8 (line {line} holds the byte 0x{data[exc.start]:02x}); "
                                     "save it as UTF-8", variable=None) from None
    return found


def refuse_unknown_variables(env_file: Any) -> None:
    """Raise ``ConfigurationError`` for a ``GATEWAY_*`` variable of the environment or the ``.env`` file that no
    setting has, naming the closest one: ignored, a misspelt setting would leave its default in force. A
    registered backend's own settings count as settings, should their prefix begin with ``GATEWAY_``."""
    known = setting_names(GatewaySettings)
    found = [(name, name) for name in sorted(os.environ)]
    found += [(name, f"{name} in {path}") for path in _dotenv_files(env_file)
              for name in dotenv_values(path, encoding="utf-8")]
    unknown = [(name, where) for name, where in found if name.upper().startswith(OWN_PREFIX)
               and name.upper() not in known]
    if unknown:  # only now are the installed backends read, which imports their packages
        known |= {name for registration in registrations() for name in own_variable_names(registration)}
    for name, where in unknown:
        if name.upper() not in known:
            raise not_a_setting(name, where, known)


def _backend_settings_error(error: ValidationError, registration: BackendRegistration,
                            from_url: Collection[str]) -> ConfigurationError:
    """One line per invalid setting of a backend's own, named by its variable (``MAIL_URL`` for what the URL
    gave, which is never shown); never the value of a secret."""
    model = registration.settings
    assert model is not None
    prefix = str(model.model_config.get("env_prefix") or "")
    lines, first = [], None
    for item in error.errors(include_url=False, include_input=True):
        loc = item.get("loc") or ()
        if not loc:
            lines.append(f"the {registration.name} backend's settings: {must_be(item)}")
            continue
        name = str(loc[0])
        variable = "MAIL_URL" if name in from_url else (prefix + name).upper()
        first = first or variable
        field = model.model_fields.get(name)
        if name in from_url or field is None:  # a value the URL gave is as secret as the URL
            field = FieldInfo(annotation=SecretStr, description=field.description if field else None)
        lines.append(_reason(item, variable, field))
    return ConfigurationError("\n".join(lines), variable=first)


def backend_settings(settings: GatewaySettings, env_file: Any = _ENV_FILE) -> BaseSettings | None:
    """The selected backend's own settings (its registration's ``settings`` model): read from the environment
    and ``env_file`` (the gateway's ``.env``) once, then kept with ``settings``. None for a backend without
    settings of its own. Raise ``ConfigurationError`` naming the variable when they cannot work."""
    registration = find_backend(settings.backend_name)
    if registration is None or registration.settings is None:
        return None
    kept = settings._backend_settings
    if kept is not None and kept[0] == registration.name:  # a copy made for another backend: not its
        return kept[1]
    from_url = settings.mail_url.given if settings.mail_url is not None else {}
    try:
        own = registration.settings(_env_file=env_file, **from_url)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise _backend_settings_error(exc, registration, from_url) from None
    settings._backend_settings = (registration.name, own)
    return own


def load_settings(*, app_config: Mapping[str, Any] | None = None, testing: bool = False,
                  **overrides: Any) -> GatewaySettings:
    """Read the settings: ``overrides``, the environment, ``.env``, then a Flask app's ``app_config``; raise
    ``ConfigurationError`` if they cannot work.

    ``testing`` (a Flask app's TESTING) keeps mail in memory unless a backend is named or MAIL_SUPPRESS_SEND
    says otherwise, as Flask-Mail and flask-mailman do not send from tests.
    """
    refuse_unknown_variables(overrides.get("_env_file", _ENV_FILE))
    try:
        with reading_app_config(app_config):
            settings = GatewaySettings(**overrides)
    except ValidationError as exc:
        environment = {name.upper() for name in os.environ}
        from_app_config = {key for key in app_config or {} if key not in environment and key.lower() not in overrides}
        message, variable = describe_validation_error(exc, from_app_config)
        raise ConfigurationError(message, variable=variable) from exc
    if testing and settings.mail_suppress_send is None and not settings.backend_named:
        settings = settings.model_copy(update={"mail_suppress_send": True})
    backend_settings(settings, overrides.get("_env_file", _ENV_FILE))
    return settings
