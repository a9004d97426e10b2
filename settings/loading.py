"""Build settings from the environment, turning validation errors into one short message a person can act on."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from mail_gateway.errors import ConfigurationError
from mail_gateway.settings.gateway import GatewaySettings


def describe_validation_error(error: ValidationError) -> tuple[str, str | None]:
    """One line per invalid variable, naming it and its fix; never the value of a secret."""
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
        lines.append(f"{variable} is invalid ({reason}); {fix}")
    return "\n".join(lines), first_variable


def load_settings(**overrides: Any) -> GatewaySettings:
    """Read the settings (environment, then ``.env``); raise ``ConfigurationError`` if they cannot work."""
    try:
        return GatewaySettings(**overrides)
    except ValidationError as exc:
        message, variable = describe_validation_error(exc)
        raise ConfigurationError(message, variable=variable) from exc
