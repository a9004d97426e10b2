"""MkDocs hook: the configuration reference, generated from ``mail_gateway.settings`` at every build.

A page writes ``<!-- settings-reference -->`` for every setting, grouped by subject, or
``<!-- settings: NAME NAME ... -->`` for a table of some. Each row's name, type, default and accepted values are
read from the settings models; what a setting means is read from ``settings.yml`` beside this file. The build
fails when a setting has no meaning there or a meaning names no setting, so the reference cannot drift from the
code.
"""

from __future__ import annotations

import html
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from mkdocs.exceptions import PluginError
from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

MEANINGS = Path(__file__).with_name("settings.yml")
ALL = re.compile(r"<!--\s*settings-reference\s*-->")
SOME = re.compile(r"<!--\s*settings:\s*([A-Z0-9_\s]+?)\s*-->")

# Each subject's heading in the full reference, in the order GatewaySettings hands them out.
TITLES = {
    "core": "Core", "smtp": "SMTP delivery", "http": "HTTP API", "ingress": "SMTP ingress",
    "outbox": "Developer outbox", "senders": "Senders", "flask_mail": "Flask-Mail's and flask-mailman's keys",
    "store": "The store", "queue": "Queued delivery", "webhooks": "Webhooks", "console": "Console backend",
    "memory": "Memory backend", "file": "File backend", "dkim": "DKIM signing", "templates": "Stored templates",
    "unsubscribe": "One-click unsubscribe",
}
UNITS = ((86400, "days", "day"), (3600, "h", "h"))


def settings_fields() -> dict[str, tuple[str, FieldInfo]]:
    """Every setting by its environment name, with its subject and its field, in the subjects' order."""
    from mail_gateway.settings import GatewaySettings
    from mail_gateway.settings.subjects import SUBJECTS

    found: dict[str, tuple[str, FieldInfo]] = {}
    for subject, model in SUBJECTS.items():
        for name in model.model_fields:
            if name in GatewaySettings.model_fields and name.upper() not in found:
                found[name.upper()] = (subject, GatewaySettings.model_fields[name])
    return found


def meanings(fields: dict[str, tuple[str, FieldInfo]]) -> dict[str, dict[str, str]]:
    entries = yaml.safe_load(MEANINGS.read_text(encoding="utf-8"))
    missing, unknown = sorted(set(fields) - set(entries)), sorted(set(entries) - set(fields))
    if missing or unknown:
        raise PluginError(f"docs/hooks/{MEANINGS.name}: settings without a meaning: {', '.join(missing) or 'none'}; "
                          f"entries naming no setting: {', '.join(unknown) or 'none'}; add an entry saying what each "
                          "new setting means, and remove those of settings that are gone")
    for name, entry in entries.items():
        if "default" in entry and fields[name][1].default is not None:
            raise PluginError(f"docs/hooks/{MEANINGS.name}: {name} has a default in its model; remove its 'default:' "
                              "entry")
    return entries


def type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{value}`" for value in typing.get_args(annotation))
    if origin is tuple:
        return "list of " + type_name(typing.get_args(annotation)[0])
    names = {bool: "boolean", int: "integer", float: "number", str: "string", Path: "path", SecretStr: "secret string"}
    if getattr(annotation, "__name__", "") == "MailUrl":
        return "URL"
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)).lower())


def _in_words(name: str, value: float) -> str:
    if name.endswith("_BYTES") and value >= 1 << 20:
        return f" ({value / (1 << 20):g} MiB)"
    if isinstance(value, float) or name.endswith(("_EXPIRY", "_LIFETIME", "_SCHEDULE")):
        for seconds, plural, one in UNITS:
            if value >= seconds and value % seconds == 0:
                count = int(value // seconds)
                return f" ({count} {one if count == 1 else plural})"
    return ""


def default_text(name: str, field: FieldInfo, entry: dict[str, str]) -> str:
    value = field.default
    if "default" in entry:
        return entry["default"]
    if value is None or value is PydanticUndefined or value == ():
        return "—"
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float):
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        return f"`{shown}`{_in_words(name, value)}"
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def row(name: str, field: FieldInfo, entry: dict[str, str]) -> str:
    meaning = entry["meaning"].rstrip(".")
    if field.description:
        # The fix start-up prints, as text: its 'App <app@example.com>' is no HTML tag.
        meaning += f". Accepted: {html.escape(field.description.removeprefix('set it to '), quote=False)}"
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        earlier = [str(choice).upper() for choice in alias.choices if str(choice).upper() != name]
        meaning += f". Also read under its earlier name {', '.join(f'`{old}`' for old in earlier)}" if earlier else ""
    cells = (f"`{name}`", type_name(field.annotation), default_text(name, field, entry), meaning)
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def table(names: list[str], fields: dict[str, tuple[str, FieldInfo]], entries: dict[str, dict[str, str]]) -> str:
    unknown = [name for name in names if name not in fields]
    if unknown:
        raise PluginError(f"a settings table names {', '.join(unknown)}, which is no setting; fix the page")
    head = "| Variable | Type | Default | Meaning |\n|---|---|---|---|\n"
    return head + "\n".join(row(name, fields[name][1], entries[name]) for name in names) + "\n"


def reference(fields: dict[str, tuple[str, FieldInfo]], entries: dict[str, dict[str, str]]) -> str:
    parts = []
    for subject, title in TITLES.items():
        names = [name for name, (where, _) in fields.items() if where == subject]
        if names:
            parts.append(f"### {title}\n\n{table(names, fields, entries)}")
    left = [name for name, (where, _) in fields.items() if where not in TITLES]
    if left:
        raise PluginError(f"settings of a subject without a title in {__name__}.TITLES: {', '.join(left)}")
    return "\n".join(parts)


def render(markdown: str) -> str:
    if not (ALL.search(markdown) or SOME.search(markdown)):
        return markdown
    fields = settings_fields()
    entries = meanings(fields)
    markdown = ALL.sub(lambda _: reference(fields, entries), markdown)
    return SOME.sub(lambda match: table(match.group(1).split(), fields, entries), markdown)


def on_page_markdown(markdown: str, **_: Any) -> str:
    return render(markdown)
