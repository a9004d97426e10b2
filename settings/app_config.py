"""A Flask app's ``app.config`` as a source of settings, below the environment.

``MailGateway(app)`` reads the app's ``MAIL_*`` and ``GATEWAY_*`` keys into the same fields, with the same types
and validation, as the environment variables of those names (``587`` and ``"587"`` are both a port). First
wins: keyword overrides, environment variables, the ``.env`` file, ``app.config``, the defaults; so the same
app sends over SMTP in production and keeps mail in memory in CI by setting a variable, not by editing code.

A key set to ``None`` counts as unset, as in configs written ``MAIL_USERNAME = os.environ.get(...)``. A
``MAIL_*`` or ``GATEWAY_*`` key that is no setting of the gateway stops start-up naming the closest one: it is
most likely misspelt, and would otherwise be ignored without a word.

Flask's ``app.config.from_prefixed_env()`` reads each variable as JSON, so ``FLASK_MAIL_PASSWORD=123456`` arrives
as the number 123456. A whole number given to a text setting is taken as its digits, which are exactly what was
written; any other number, or true/false, is refused saying to quote it (``settings.loading``), since ``1.50``
read as JSON is ``1.5`` and the text written is lost.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from mail_gateway.errors import ConfigurationError

PREFIXES = ("MAIL_", "GATEWAY_")

# Set only while ``load_settings(app_config=...)`` builds one settings object, in its own thread or task.
_app_config: ContextVar[Mapping[str, Any] | None] = ContextVar("mail_gateway_app_config", default=None)
_TEXT_TYPES = {str, SecretStr, str | None, SecretStr | None}


@contextmanager
def reading_app_config(config: Mapping[str, Any] | None) -> Iterator[None]:
    token = _app_config.set(config)
    try:
        yield
    finally:
        _app_config.reset(token)


def _names_of(name: str, field: FieldInfo) -> set[str]:
    choices = getattr(field.validation_alias, "choices", ())
    return {name.upper()} | {str(choice).upper() for choice in choices}


def setting_names(settings_cls: type[BaseSettings]) -> set[str]:
    """Every name a setting is read under, upper-case: each field's name and its other names."""
    return {alias for name, field in settings_cls.model_fields.items() for alias in _names_of(name, field)}


def _text_names(settings_cls: type[BaseSettings]) -> set[str]:
    return {alias for name, field in settings_cls.model_fields.items() if field.annotation in _TEXT_TYPES
            for alias in _names_of(name, field)}


def _as_setting(value: Any, text: bool) -> Any:
    # flask-mailman takes MAIL_BACKEND as a class too; a class is named by its dotted path, which the backend
    # setting understands (and resolves, for flask-mailman's own classes, once the extension registered them).
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if text and isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # from_prefixed_env()'s JSON of an all-digit value: its digits are what was written
    return value


def app_config_values(config: Mapping[str, Any], settings_cls: type[BaseSettings]) -> dict[str, Any]:
    """The settings ``config`` sets, by field name; raises ``ConfigurationError`` for an unknown key."""
    known, text = setting_names(settings_cls), _text_names(settings_cls)
    values: dict[str, Any] = {}
    for key, value in config.items():
        if not isinstance(key, str) or not key.startswith(PREFIXES) or value is None:
            continue
        if key not in known:
            raise not_a_setting(key, f"app.config[{key!r}]", known)
        values[key.lower()] = _as_setting(value, key in text)
    return values


def not_a_setting(name: str, where: str, known: set[str]) -> ConfigurationError:
    """The error for ``name`` (shown as ``where``), which no setting has: most likely misspelt, so it names the
    closest setting."""
    close = difflib.get_close_matches(name.upper(), sorted(known), n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return ConfigurationError(f"{where} is not a setting of mail-gateway; {hint}remove it or use one of the "
                              "settings listed in docs/configuration.md", variable=name)


class AppConfigSource(PydanticBaseSettingsSource):
    """The pydantic-settings source of the ``app.config`` being read, if any."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # every value comes from __call__

    def __call__(self) -> dict[str, Any]:
        config = _app_config.get()
        return {} if config is None else app_config_values(config, self.settings_cls)
