"""Compile a template's parts and render them with a request's variables: the subject and the text part unescaped,
the HTML part autoescaped, its CSS inlined and, without a text part, a text part made from it.

Every failure is a ``TemplateError`` naming the template, the part, the line in that part and, for a missing
variable, which one (``variables.user.name`` for ``{{ user.name }}``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

from jinja2 import Template, TemplateSyntaxError, UndefinedError, nodes
from jinja2.sandbox import SecurityError

from mail_gateway.errors import TemplateError
from mail_gateway.extras import needs_extra
from mail_gateway.templating.inlined import compile_once, plain_data, rewritten_by_inlining, text_of
from mail_gateway.templating.limits import budget
from mail_gateway.templating.sandbox import HTML, PLAIN

PARTS = ("subject", "text", "html")
WRITTEN = "html as written"  # rendered beside the HTML part inlined once, for the text part made from it
SECONDS = 2.0  # the clock's bound on a message's rendering: the steps and output bound the work, this a slow machine's
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # a header's forbidden characters but tab and line breaks
_UNDEFINED = re.compile(r"^'([^']*)' is undefined$|has no attribute '([^']*)'$")


@dataclass(frozen=True)
class Limits:
    max_output: int
    max_steps: int
    seconds: float = SECONDS


@dataclass(frozen=True)
class CompiledTemplate:
    name: str
    version: int | None  # a stored template's; None for one of the folder's files
    label: str  # where it came from, for the X-Template header: "version=3", "file=<digest>"
    parts: Mapping[str, Template]
    trees: Mapping[str, nodes.Template]
    sources: Mapping[str, str | None]  # as written
    inlined: Template | None = None  # the HTML part with its CSS inlined once (``preinline``), where it can be
    text_made: Template | None = None  # with ``inlined`` and no text part: its text made once (``pretext``)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str | None
    html: str | None
    template: str
    version: int | None
    label: str

    @property
    def header(self) -> str:
        """The X-Template header's value: which template, and which version of it, the message came from."""
        return f"{self.template}; {self.label}"


def located(exc: TemplateError, name: str, part: str, line: int | None = None) -> TemplateError:
    """``exc`` said again with where it happened."""
    line = exc.line or line
    where = f"template {name!r} ({part}" + (f", line {line})" if line else ")")
    return TemplateError(f"{where}: {exc}", template=name, part=part, line=line, variable=exc.variable,
                         field=exc.field if exc.field not in ("template", None) else part)


def compile_template(name: str, version: int | None, sources: Mapping[str, str | None],
                     label: str | None = None, *, inline: bool = True) -> CompiledTemplate:
    parts: dict[str, Template] = {}
    trees: dict[str, nodes.Template] = {}
    for part in PARTS:
        source = sources.get(part)
        if source is None:
            continue
        try:
            if part == "subject":
                _check_subject_text(source)
            parts[part], trees[part] = (HTML if part == "html" else PLAIN).compile_checked(source)
        except TemplateSyntaxError as exc:
            raise located(TemplateError(f"{exc.message}; fix the template", line=exc.lineno), name, part) from None
        except (RecursionError, SyntaxError, MemoryError):  # Jinja2's parser, or Python compiling what it wrote
            raise located(TemplateError("it nests too deeply to be compiled (brackets, blocks or loops inside "
                                        "one another); nest less"), name, part) from None
        except TemplateError as exc:
            raise located(exc, name, part) from None
        # Jinja2 keeps a template's globals as a ChainMap over its environment's and copies them into every
        # rendering's context by iterating it in Python (about 7 of a part's 20 µs). The environments' globals
        # are fixed when they are made, so a plain dict reads the same.
        parts[part].globals = dict(parts[part].globals)
    once = compile_once(sources["html"] or "", trees["html"], "text" in parts) if "html" in parts and inline else ()
    return CompiledTemplate(name, version, label or f"version={version}", parts, trees, dict(sources), *once)


def _check_subject_text(source: str) -> None:
    """``TemplateError`` for a control character written in a subject's text: every rendering that reaches it
    would be refused (header injection), so it is refused when the template is saved. Line breaks are left to the
    rendering: written between tags, they may be stripped with the subject's ends or left out with a branch."""
    for line, kind, value in PLAIN.lex(source):
        found = CONTROL.search(value) if kind == "data" else None
        if found:
            raise TemplateError(f"its text holds U+{ord(found.group()):04X}, a control character no subject may "
                                "hold; remove it", line=line + value[:found.start()].count("\n"))


def _line(trace: TracebackType | None) -> int | None:
    """The template's line where the rendering failed: Jinja2 rewrites the traceback to show it."""
    line = None
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def _path(tree: nodes.Template, line: int | None, name: str) -> str:
    """``user.name`` for a missing ``name`` read as ``{{ user.name }}`` on that line; else the name alone."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        key = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        if key != name or node.lineno != line:
            continue
        names, inner = [name], node.node
        while isinstance(inner, nodes.Getattr | nodes.Getitem):
            names.insert(0, str(inner.attr if isinstance(inner, nodes.Getattr) else getattr(inner.arg, "value", "?")))
            inner = inner.node
        if isinstance(inner, nodes.Name):
            return ".".join([inner.name, *names])
    return name


def _failure(exc: Exception, compiled: CompiledTemplate, part: str) -> TemplateError:
    line = _line(exc.__traceback__)
    if isinstance(exc, TemplateError):
        return located(exc, compiled.name, part, line)
    if isinstance(exc, UndefinedError):
        found = _UNDEFINED.search(exc.message or "")
        variable = next((g for g in found.groups() if g), "?") if found else "?"
        path = _path(compiled.trees[part], line, variable)
        error = TemplateError(f"the variable {variable!r} is undefined; add {path!r} to variables",
                              variable=variable, field=f"variables.{path}", line=line)
    elif isinstance(exc, SecurityError):
        error = TemplateError(f"it reaches for what templates may not use ({exc}); remove it", line=line)
    elif isinstance(exc, RecursionError):
        error = TemplateError("it calls itself too deeply; give its recursion an end", line=line)
    else:
        error = TemplateError(f"it failed: {type(exc).__name__}: {str(exc)[:200]}", line=line)
    return located(error, compiled.name, part)


def render_template(compiled: CompiledTemplate, variables: Mapping[str, Any], limits: Limits) -> Rendered:
    """Raises ``TemplateError``: the rendering failed, was refused by the sandbox or reached a limit."""
    if compiled.inlined is not None and plain_data(variables):
        started = time.monotonic()
        try:
            rendered = _render(compiled, variables, limits, compiled.inlined)
            if not rewritten_by_inlining(rendered.html or ""):
                return rendered
        except TemplateError:  # said again below, on the lines of the HTML as written
            limits = replace(limits, seconds=max(limits.seconds - (time.monotonic() - started), 0.0))
    return _render(compiled, variables, limits, None)


def _render(compiled: CompiledTemplate, variables: Mapping[str, Any], limits: Limits,
            inlined: Template | None) -> Rendered:
    """Rendered with the HTML part as written, its CSS inlined after; or with ``inlined``, and the text made once
    or the HTML as written (``WRITTEN``) for a text part made from it."""
    parts = dict(compiled.parts)
    made = compiled.text_made
    if inlined is not None:
        parts.update({"html": inlined, **({} if "text" in parts else {WRITTEN: made or compiled.parts["html"]})})
    out: dict[str, str] = {}
    with budget(limits.max_steps, limits.max_output, limits.seconds):
        for part, template in parts.items():
            try:
                out[part] = template.render(variables)
            except Exception as exc:  # a template is the client's code: whatever it raises is its error
                raise _failure(exc, compiled, "html" if part == WRITTEN else part) from None
    for part, value in out.items():
        _check_unicode(value, compiled, "html" if part == WRITTEN else part)
    html, text = out.get("html"), out.get("text")
    if html is not None and inlined is None:
        html, text = _finish_html(html, text, compiled)
    elif html is not None and text is None:
        text = text_of(out[WRITTEN], made=made is not None)
    return Rendered(out.get("subject", "").strip(), text, html, compiled.name, compiled.version, compiled.label)


def _check_unicode(value: str, compiled: CompiledTemplate, part: str) -> None:
    """A lone surrogate (JSON carries "\\ud800" in a variable) refused before the HTML is finished: css-inline and
    every mail encoding fail on it, and their failure would not say where it came from."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise located(TemplateError(f"it writes a lone surrogate (U+{ord(value[exc.start]):04X}), which no mail can "
                                    "carry; give the variables valid Unicode"), compiled.name, part) from None


def _finish_html(html: str, text: str | None, compiled: CompiledTemplate) -> tuple[str, str | None]:
    """The HTML part with its CSS inlined, and the text part made from it when the template has none."""
    # css-inline and lxml (the templates extra) are loaded with the first HTML part rendered.
    with needs_extra("rendering a template's HTML part"):
        from mail_gateway.templating.html import html_to_text, inline_css
    if text is None:
        text = html_to_text(html)  # before its CSS is inlined: the same text from half the markup
    try:
        return inline_css(html), text
    except TemplateError as exc:
        raise located(exc, compiled.name, "html") from None


def reason(exc: TemplateError) -> str:
    """What went wrong, without the template, part and line ``located`` put before it."""
    return str(exc).partition("): ")[2] or str(exc)
