"""A template inlined once (``preinline``), and its text made once (``pretext``), at use: compiled, and whether a
rendering may use them. A rendering may where its variables are JSON's values alone (an object given through the
library may have an attribute that is ``Markup``, whose elements each rendering's inlining would style) and where
what it wrote holds nothing that inlining would write otherwise.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Template, TemplateSyntaxError, nodes

from mail_gateway.errors import TemplateError
from mail_gateway.extras import needs_extra
from mail_gateway.templating.jinja_tags import draws_at_random
from mail_gateway.templating.preinline import preinline
from mail_gateway.templating.pretext import compile_pretext, finish_pretext
from mail_gateway.templating.sandbox import HTML


def compile_once(source: str, tree: nodes.Template, has_text: bool) -> tuple[Template | None, Template | None]:
    """The HTML part inlined once, and, for a template without a text part, its text made once (or None). Not
    for a template without a text part that may write something else each time: its text must be read from the
    rendering of its HTML part, not from a rendering of its own."""
    if not has_text and draws_at_random(tree):
        return None, None
    inlined = compile_inlined(source, tree)
    return inlined, compile_pretext(source) if inlined is not None and not has_text else None


def text_of(html: str, *, made: bool) -> str:
    """The text part of a rendering of the text made once (``made``), or of the HTML part as written."""
    if made:
        return finish_pretext(html)
    with needs_extra("rendering a template's HTML part"):
        from mail_gateway.templating.html import html_to_text
    return html_to_text(html)


def compile_inlined(source: str, tree: nodes.Template) -> Template | None:
    """The HTML part compiled with its CSS inlined, or None: ``preinline`` cannot show it the same, the templates
    extra (css-inline) is missing, or what it gives does not compile (each rendering then inlines)."""
    try:
        from mail_gateway.templating.html import inline_css  # which refuses HTML nested too deep to inline
    except ImportError:
        return None
    try:
        inlined = preinline(source, tree, inline_css)
        if inlined is None:
            return None
        template = HTML.compile_guarded(inlined)
    except (TemplateError, TemplateSyntaxError, RecursionError, SyntaxError, MemoryError, ImportError):
        return None
    template.globals = dict(template.globals)  # as compile_template does, for the same reason
    return template

def plain_data(value: Any, room: int = 100_000) -> bool:
    """Whether ``value`` is made of JSON's types alone (as every request's variables are; an object given through
    the library may have an attribute that is ``Markup``), looking at no more than ``room`` values."""
    pending = [value]
    while pending:
        room -= 1
        item = pending.pop()
        if room < 0:
            return False
        if type(item) is dict:  # not a subclass, whose items could be read otherwise
            pending.extend(item.values())
            if not all(type(key) is str for key in item):
                return False
        elif type(item) in (list, tuple):
            pending.extend(item)
        elif not (item is None or type(item) in (str, int, float, bool)):
            return False
    return True

def rewritten_by_inlining(html: str) -> bool:
    """Whether a rendering holds what inlining it would write otherwise: html5ever reads CR and NUL anew."""
    return "\r" in html or "\x00" in html
