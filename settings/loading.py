"""Build settings from the environment, turning validation errors into one short message a person can act on."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import ValidationError

from mail_gateway.errors import ConfigurationError
from mail_gateway.settings.app_config import reading_app_config
from mail_gateway.settings.gateway import GatewaySettings


def describe_validation_error(error: ValidationError, from_app_config: Collection[str] = ()) -> tuple[str, str | None]:
    """One line per invalid variable, naming it (as ``app.config['KEY']`` when that is where it was set) and its
    fix; never the value of a secret."""
    lines: list[str] = []
    first_variable: str | None = None
    fields = GatewaySettings.model_fields
    for item in error.errors(include_url=False, include_input=False):
        loc = item.get("loc") or ()
        if not loc:  # a cross-field rule: its message already names the variables and the fix
            lines.append(str(item["msg"]).removeprefix("Value error, "))
            continue
        name = str(loc[0])
        variable = name.upper()
        first_variable = first_variable or variable
        reason = str(item["msg"]).removeprefix("Value error, ")
        field = fields.get(name)
        fix = field.description if field is not None and field.description else "correct it"
        where = f"app.config[{variable!r}]" if variable in from_app_config else variable
        lines.append(f"{where} is invalid ({reason}); {fix}")
    return "\n".join(lines), first_variable


def load_settings(*, app_config: Mapping[str, Any] | None = None, testing: bool = False,
                  **overrides: Any) -> GatewaySettings:
    """Read the settings: ``overrides``, the environment, ``.env``, then a Flask app's ``app_config``; raise
    ``ConfigurationError`` if they cannot work.

    ``testing`` (a Flask app's TESTING) keeps mail in memory unless a backend is named or MAIL_SUPPRESS_SEND
    says otherwise, as Flask-Mail and flask-mailman do not send from tests.
    """
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
