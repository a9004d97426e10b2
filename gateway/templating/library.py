"""``TemplateLibrary``: where templates come from — the folder of files (GATEWAY_TEMPLATES_DIR), which wins, then
the store — their creation, replacement and deletion, and their rendering into a request.

Templates are the service's: every API key may use and change them (a key's own templates would need owners and
a lookup order, which nothing asked for yet). A stored template is compiled once per version and kept; a process
looks at the store again when it last did more than ``FRESH_SECONDS`` ago (reading it at every send cost as much
as rendering it), and forgets it at once when it changes it itself (keeping nothing a send read while the change
was under way). So the process that stores a version sends it from then on, and every other process, on this host
or another, within a second.
"""

from __future__ import annotations

import threading
import time
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from mail_gateway.errors import (
    FieldError,
    InvalidMessageError,
    NoSuchTemplateError,
    TemplateConflictError,
    TemplateError,
)
from mail_gateway.extras import require
from mail_gateway.mail.fields import HeaderValue, Text
from mail_gateway.mail.request import MessageRequest
from mail_gateway.settings.templates import TemplateSettings
from mail_gateway.settings.wording import must_be
from mail_gateway.store.database import Store
from mail_gateway.templating.files import read_folder
from mail_gateway.templating.models import TemplateParts
from mail_gateway.templating.render import PARTS, CompiledTemplate, Limits, Rendered, compile_template, render_template

if TYPE_CHECKING:
    from mail_gateway.store.templates import StoredTemplate

HEADER = "X-Template"
MAX_COMPILED = 1000  # stored templates kept compiled; past it the cache starts again
FRESH_SECONDS = 1.0
# A part's source, as written: compiling costs seconds per hundred kilobytes of dense tags, and Gmail clips a
# message past 102 KB anyway.
MAX_SOURCE = 131_072


class _Filled(BaseModel):
    """What a template fills in, checked as the client's own fields would be (one line of subject, no lone
    surrogates)."""

    subject: HeaderValue
    text: Text | None
    html: Text | None


class TemplateLibrary:
    def __init__(self, store: Store, settings: TemplateSettings) -> None:
        """Reads the folder of files, if any; raises ``ConfigurationError`` naming a file that cannot be used."""
        self.store = store
        self.limits = Limits(settings.gateway_template_max_output, settings.gateway_template_max_steps)
        directory = settings.gateway_templates_dir
        if directory is not None:  # rendering HTML inlines its CSS and makes its text part (the templates extra)
            require("templates", "GATEWAY_TEMPLATES_DIR", variable="GATEWAY_TEMPLATES_DIR")
        self.files = read_folder(directory) if directory is not None else {}
        # Each stored template used: when the store was last asked for it, and what it said then.
        self._compiled: dict[str, tuple[float, StoredTemplate, CompiledTemplate]] = {}
        self._lock = threading.Lock()

    # -- using them ------------------------------------------------------------------------------------------

    def find(self, name: str) -> CompiledTemplate:
        """``NoSuchTemplateError`` when neither a file nor the store has it."""
        if name in self.files:
            return self.files[name]
        now = time.monotonic()
        kept = self._compiled.get(name)
        if kept is not None and now - kept[0] < FRESH_SECONDS:
            return kept[2]
        if not self.store.available:
            raise NoSuchTemplateError(f"no template is named {name!r}; without the queue extra there is no store "
                                      "of templates: add it as a file of GATEWAY_TEMPLATES_DIR")
        changes = self._changes()
        stored = self.store.read(lambda conn: _rows().get(conn, name))
        if stored is None:
            raise NoSuchTemplateError(f"no template is named {name!r}; create it with POST /v1/templates, or as "
                                      "files of GATEWAY_TEMPLATES_DIR")
        # The time it was stored tells a template deleted and created again (version 1 once more) from the old.
        same = kept is not None and (kept[1].version, kept[1].updated_at) == (stored.version, stored.updated_at)
        compiled = kept[2] if same and kept is not None else compile_template(name, stored.version, _sources(stored))
        with self._lock:
            if len(self._compiled) >= MAX_COMPILED:
                self._compiled.clear()
            # A change this process made while it read (answered, perhaps, before the read ends) makes what it read
            # too old to keep: kept, a later send would render it after the change, for up to FRESH_SECONDS.
            if changes == self._changes():
                self._compiled[name] = (now, stored, compiled)
        return compiled

    def _changes(self) -> tuple[int, int]:
        return self.store.generation, self.store.writer.changed[_rows().TABLE]

    def _forget(self, name: str) -> None:
        with self._lock:
            self._compiled.pop(name, None)

    def render(self, name: str, variables: dict[str, Any]) -> Rendered:
        """The template rendered, its subject, text and html checked as a client's own would be: the render
        route refuses what a send would (``InvalidMessageError`` naming the part)."""
        rendered = render_template(self.find(name), variables, self.limits)
        try:
            _Filled(subject=rendered.subject, text=rendered.text, html=rendered.html)
        except ValidationError as exc:
            raise InvalidMessageError(errors=[FieldError(str(e["loc"][0]), f"as rendered by template {name!r}, "
                                                         f"{must_be(e)}")
                                              for e in exc.errors(include_url=False, include_input=False)]) from exc
        return rendered

    def apply(self, request: MessageRequest) -> MessageRequest:
        """The request with its template rendered into its subject, text and html, and an X-Template header
        saying which template and version; the composer and the pipeline see an ordinary message."""
        assert request.template is not None
        try:
            rendered = self.render(request.template, request.variables)
        except NoSuchTemplateError as exc:
            raise InvalidMessageError(str(exc), field="template") from exc
        return request.model_copy(update={"subject": rendered.subject, "text": rendered.text, "html": rendered.html,
                                          "headers": {**request.headers, HEADER: rendered.header}})

    # -- keeping them ------------------------------------------------------------------------------------------

    def _writable(self, name: str, parts: TemplateParts | None = None) -> None:
        if name in self.files:
            raise TemplateConflictError(f"the template {name!r} is a file of GATEWAY_TEMPLATES_DIR, which is "
                                        "read-only here; change the file, or choose another name", reason="read-only")
        if parts is None:
            return
        for part in PARTS:
            source = getattr(parts, part)
            if source is not None and len(source) > min(self.limits.max_output, MAX_SOURCE):
                raise TemplateError(f"the {part} is longer than a template's part may be ({MAX_SOURCE} characters, "
                                    f"and GATEWAY_TEMPLATE_MAX_OUTPUT, {self.limits.max_output}); shorten it",
                                    template=name, part=part)
        if parts.text is None and parts.html is None:
            raise InvalidMessageError("give text, html or both", field="text")
        compile_template(name, None, parts.model_dump(), inline=False)  # a syntax error or unsafe name: refused now

    def create(self, name: str, parts: TemplateParts) -> StoredTemplate:
        self._writable(name, parts)
        now = time.time()
        made = self.store.write(lambda conn: _rows().create(conn, name, **parts.model_dump(), now=now))
        self._forget(name)
        if made is None:
            raise TemplateConflictError(f"a template is already named {name!r}; replace it with PUT "
                                        f"/v1/templates/{name}", reason="exists")
        return made

    def replace(self, name: str, parts: TemplateParts) -> StoredTemplate:
        self._writable(name, parts)
        now = time.time()
        changed = self.store.write(lambda conn: _rows().replace(conn, name, **parts.model_dump(), now=now))
        self._forget(name)
        if changed is None:
            raise NoSuchTemplateError(f"no template is named {name!r}; create it with POST /v1/templates")
        return changed

    def delete(self, name: str) -> None:
        self._writable(name)
        deleted = self.store.write(lambda conn: _rows().delete(conn, name))
        self._forget(name)
        if not deleted:
            raise NoSuchTemplateError(f"no template is named {name!r}")

    def describe(self, name: str) -> dict[str, Any]:
        """The template as GET /v1/templates/<name> shows it."""
        if name in self.files:
            compiled = self.files[name]
            return {**_summary(compiled), "created_at": None, **_file_sources(compiled)}
        stored = self.store.read(lambda conn: _rows().get(conn, name))
        if stored is None:
            raise NoSuchTemplateError(f"no template is named {name!r}")
        return stored_view(stored, detail=True)

    def listing(self) -> list[dict[str, Any]]:
        stored = {t.name: stored_view(t) for t in self.store.read(_rows().list_all) if t.name not in self.files}
        return sorted([*stored.values(), *map(_summary, self.files.values())], key=lambda t: t["name"])


def _rows() -> ModuleType:
    """The store's table of templates (SQLAlchemy: the queue extra), loaded when a stored template is first used."""
    from mail_gateway.store import templates

    return templates


def _sources(stored: StoredTemplate) -> dict[str, str | None]:
    return {"subject": stored.subject, "text": stored.text, "html": stored.html}


def _summary(compiled: CompiledTemplate) -> dict[str, Any]:
    return {"name": compiled.name, "version": None, "source": "files", "label": compiled.label, "updated_at": None}


def _file_sources(compiled: CompiledTemplate) -> dict[str, str | None]:
    return {part: compiled.sources.get(part) for part in PARTS}


def stored_view(stored: StoredTemplate, *, detail: bool = False) -> dict[str, Any]:
    from mail_gateway.store.webhooks import iso

    view: dict[str, Any] = {"name": stored.name, "version": stored.version, "source": "store",
                            "label": f"version={stored.version}", "updated_at": iso(stored.updated_at)}
    if detail:
        view.update(_sources(stored), created_at=iso(stored.created_at))
    return view
