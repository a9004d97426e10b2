"""Settings every use of the gateway needs: the environment, the backend it selects, the listen address and the
default sender; and ``Subject``, the base of every subject's settings model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from mail_gateway.settings.registration import resolve_alias

Port = Annotated[int, Field(ge=1, le=65535)]
# The largest message a byte limit may let in: one is read into memory whole, and an SMTP SIZE has at most 20
# digits (RFC 1870), which a limit without a bound let run past.
MAX_MESSAGE_BYTES = 1024 * 1024 * 1024


def _path_as_written(value: Any) -> Any:
    # pydantic reads '' as Path('.'): MAIL_FILE_PATH= wrote mail into the working directory. A space at either end
    # is a quoting slip that made another (relative) path, such as ' /var/spool' under the working directory.
    if not isinstance(value, str):
        return value
    if not value.strip():
        return None
    if value != value.strip():
        raise ValueError("it begins or ends with white space; remove it")
    return value


def _is_number(annotation: Any) -> bool:
    """Whether a field of ``annotation`` holds a number (``int``, ``float | None``...)."""
    return annotation in (int, float) or any(_is_number(arg) for arg in get_args(annotation))


# A file or directory setting: blank is unset.
OptionalPath = Annotated[Path | None, BeforeValidator(_path_as_written)]
Environment = Literal["development", "testing", "production"]


def name_and_address(name: str, address: str) -> str:
    """``("Ann, Sales", "ann@x.org")`` -> ``'"Ann, Sales" <ann@x.org>'``: quoted where the name needs it, never
    encoded, so the address parser sees the name as written."""
    if not name:
        return address
    if any(char in name for char in '()<>@,;:\\".[]'):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"


def require_utf8(secret: str) -> None:
    """``ValueError`` for a secret holding bytes that are not UTF-8: they reach ``os.environ`` as lone surrogates,
    which no encoder takes, and the ``UnicodeEncodeError`` would name the byte and its place in the secret."""
    try:
        secret.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("it holds bytes that are not UTF-8 text; write it in UTF-8") from None


class Subject(BaseModel):
    """The settings of one subject (SMTP, the HTTP API, the ingress...): its fields, their validation and the rules
    among them. ``GatewaySettings`` inherits every subject's fields, read under their names from the environment,
    and hands out each subject's own model (``settings.smtp``), built from those values (settings/subjects.py)."""

    # Frozen like the settings they come from; never echoing the input, as a value may be a secret. No nan or inf:
    # nan passed no bound and was refused as "must be at most 600".
    model_config = ConfigDict(frozen=True, hide_input_in_errors=True, arbitrary_types_allowed=True,
                              allow_inf_nan=False)

    # Named apart: GatewaySettings inherits every subject's validators, and one name would hide another.
    @field_validator("*", mode="before")
    @classmethod
    def _text_a_setting_can_hold(cls, value: Any, info: ValidationInfo) -> Any:
        # A NUL ends a C string (a path, a host name), so the OS or a library refuses it with a traceback at the
        # first use; bytes that are not UTF-8 reach os.environ as lone surrogates, which nothing can encode.
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and _is_number(field.annotation):
            # pydantic takes app.config's MAIL_PORT=True as port 1 and MAIL_TIMEOUT=True as one second.
            raise ValueError("it is true or false, not a number")
        for text in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(text, str) and "\0" in text:
                raise ValueError("it holds a NUL character (U+0000); remove it")
            if isinstance(text, str) and any("\ud800" <= char <= "\udfff" for char in text):
                raise ValueError("it holds bytes that are not UTF-8 (or a lone surrogate); write it in UTF-8")
        return value


class CoreSettings(Subject):
    gateway_env: Environment = Field("development", description="set it to development, testing or production")
    gateway_host: str = Field("127.0.0.1", description="set it to the address to listen on, e.g. 127.0.0.1")
    gateway_port: Port = Field(8000, description="set it to a port number from 1 to 65535")

    mail_backend: str | None = Field(
        None,
        description="set it to smtp, console, file, memory (flask-mailman's locmem, dummy and "
        "flask_mailman.backends paths are understood too) or a dotted path package.module.ClassName",
    )
    # Checked as an address when the gateway starts (mail_gateway.sending), where addresses are understood.
    mail_default_sender: str | None = Field(None, description="set it to an address such as 'App <app@example.com>'")

    @field_validator("mail_backend")
    @classmethod
    def _backend_name_or_path(cls, value: str | None) -> str | None:
        # Only the form is checked here; which names exist is the backend registry's to say (at start-up).
        if value is None or value.strip() == "":
            return None
        value = value.strip()
        mapped = resolve_alias(value)  # another library's name (flask-mailman's locmem), where one is registered
        if mapped is not None:
            return mapped
        if "." not in value:
            return value.lower()
        module, _, cls_name = value.rpartition(".")
        if not module or not cls_name.isidentifier():
            raise ValueError(f"{value!r} is neither a backend name nor a dotted path package.module.ClassName")
        return value

    @field_validator("mail_default_sender", mode="before")
    @classmethod
    def _name_and_address(cls, value: Any) -> Any:
        # Flask-Mail and flask-mailman also take MAIL_DEFAULT_SENDER as a (name, address) pair.
        if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, str) for v in value):
            return name_and_address(value[0], value[1])
        return value

    @field_validator("mail_default_sender")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value if value is not None and value.strip() else None
