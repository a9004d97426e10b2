"""The folder of template files (GATEWAY_TEMPLATES_DIR), for teams that keep their templates in their repository:
``welcome.subject``, ``welcome.txt`` and/or ``welcome.html`` make the template ``welcome``.

The folder is read, and each template compiled, when the gateway starts: a file that cannot be used stops
start-up, naming it and its line, rather than failing the first send. Its templates are read-only (they change
with the repository, and a restart picks the change up), and a name that is both a file and a stored template is
served from the file. A file template's version is the start of the SHA-256 of its files, so a message says which
revision of them it came from.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from mail_gateway.errors import ConfigurationError, TemplateError
from mail_gateway.templating.render import CompiledTemplate, compile_template, reason

VARIABLE = "GATEWAY_TEMPLATES_DIR"
SUFFIXES = {".subject": "subject", ".txt": "text", ".html": "html"}
FILE_OF = {part: suffix for suffix, part in SUFFIXES.items()}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def _refusal(text: str) -> ConfigurationError:
    return ConfigurationError(f"{VARIABLE}: {text}", variable=VARIABLE)


def _sources(directory: Path) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for path in sorted(directory.iterdir()):
        part = SUFFIXES.get(path.suffix)
        if part is None or path.name.startswith(".") or not path.is_file():
            continue  # a README, an editor's swap file, a folder: not a template
        if not NAME.fullmatch(path.stem):
            raise _refusal(f"{path.name}: {path.stem!r} is not a template name (letters, digits, '_' and '-', at "
                           "most 64, no dot); rename the file")
        try:
            found.setdefault(path.stem, {})[part] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            raise _refusal(f"{path.name} cannot be read as UTF-8 ({exc}); fix the file") from exc
    return found


def _compiled(name: str, parts: dict[str, str]) -> CompiledTemplate:
    if "subject" not in parts:
        raise _refusal(f"{name}.subject is missing; every template needs a subject (it may be empty)")
    if "text" not in parts and "html" not in parts:
        raise _refusal(f"{name}.txt or {name}.html is missing; a template needs a text part, an HTML part or both")
    digest = hashlib.sha256()
    for part in sorted(parts):
        digest.update(f"{part}\0{parts[part]}\0".encode())
    try:
        return compile_template(name, None, parts, label=f"file={digest.hexdigest()[:12]}")
    except TemplateError as exc:
        line = f" line {exc.line}" if exc.line else ""
        raise _refusal(f"{name}{FILE_OF.get(exc.part or '', '')}{line}: {reason(exc)}") from None


def read_folder(directory: Path) -> dict[str, CompiledTemplate]:
    """Every template of the folder, compiled; ``ConfigurationError`` naming the file that cannot be used."""
    if not directory.is_dir():
        raise _refusal(f"{directory} does not exist or is not a directory; set it to an existing directory of "
                       "template files (welcome.subject, welcome.html, welcome.txt), or unset it")
    return {name: _compiled(name, parts) for name, parts in _sources(directory).items()}
