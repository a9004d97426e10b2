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

from mail_gateway.errors import ConfigurationError
from mail_gateway.settings.app_config import not_a_setting, reading_app_config, setting_names
from mail_gateway.settings.gateway import GatewaySettings
from mail_gateway.settings.mail_url import MailUrl
from mail_gateway.settings.wording import must_be, worded

OWN_PREFIX = "GATEWAY_"
_SECRET_TYPES = (SecretStr, SecretBytes, MailUrl)
_SHOWN = 40  # the most characters of a rejected value repeated in the message


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
        lines.append(_reason(item, where, field))
    return "\n".join(lines), first_variable


def _dotenv_files(env_file: Any) -> list[Path]:
    files = env_file if isinstance(env_file, (list, tuple)) else [env_file]
    return [Path(name).expanduser() for name in files if name is not None and Path(name).expanduser().is_file()]


def refuse_unknown_variables(env_file: Any) -> None:
    """Raise ``ConfigurationError`` for a ``GATEWAY_*`` variable of the environment or the ``.env`` file that no
    setting has, naming the closest one: ignored, a misspelt setting would leave its default in force."""
    known = setting_names(GatewaySettings)
    for name in sorted(os.environ):
        if name.upper().startswith(OWN_PREFIX) and name.upper() not in known:
            raise not_a_setting(name, name, known)
    for path in _dotenv_files(env_file):
        for name in dotenv_values(path, encoding="utf-8"):
            if name.upper().startswith(OWN_PREFIX) and name.upper() not in known:
                raise not_a_setting(name, f"{name} in {path}", known)


def load_settings(*, app_config: Mapping[str, Any] | None = None, testing: bool = False,
                  **overrides: Any) -> GatewaySettings:
    """Read the settings: ``overrides``, the environment, ``.env``, then a Flask app's ``app_config``; raise
    ``ConfigurationError`` if they cannot work.

    ``testing`` (a Flask app's TESTING) keeps mail in memory unless a backend is named or MAIL_SUPPRESS_SEND
    says otherwise, as Flask-Mail and flask-mailman do not send from tests.
    """
    refuse_unknown_variables(overrides.get("_env_file", GatewaySettings.model_config.get("env_file")))
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
    return settings
