"""A template inlined once (``preinline``) at use: compiled, and whether a rendering may use it. A rendering may
where its variables are JSON's values alone (an object given through the library may have an attribute that is
``Markup``, whose elements each rendering's inlining would style) and where what it wrote holds nothing that
inlining would write otherwise.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Template, TemplateSyntaxError, nodes

from mail_gateway.errors import TemplateError
from mail_gateway.templating.preinline import preinline
from mail_gateway.templating.sandbox import HTML


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
