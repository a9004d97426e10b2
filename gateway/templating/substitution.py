"""A template that only writes variables between its text (``Dear {{ name }}, your order {{ order }}``), as most
subjects and many transactional parts are, rendered by joining the two rather than by Jinja2.

Written here because Jinja2 has no such shortcut: each rendering makes a context, runs the compiled code's
generator and calls the output guards: about 3 µs for a subject and 8 µs for a 4 KB HTML part timed alone, about
twice that amid the rest of a send, and a message renders up to four parts. The result is the one Jinja2 writes:
the text as the lexer left it (whitespace control and the final newline already applied), each value written as
Jinja2 writes it (escaped where the part is autoescaped, ``str`` where not), its characters charged to the same
output budget. It is used only where the outcome cannot differ: every name is one the request's variables hold
with a value of JSON's scalar types; anything else (a global, a missing name whose error names its line, a list,
an object of the library's caller, a value that fails a check, a rendering past the output budget) is rendered by
Jinja2, which says what it says today.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes

from mail_gateway.templating.limits import current

# Names Jinja2 gives a meaning of its own in some places, whatever the variables hold.
_SPECIAL = frozenset({"self", "loop", "super", "caller", "varargs", "kwargs"})
_SCALARS = (str, int, float, bool, type(None))
Check = Callable[[Any], Any]


@dataclass(frozen=True)
class Substitution:
    texts: tuple[str, ...]  # the literal text before each name, and after the last: one more than names
    names: tuple[tuple[str, Check | None], ...]  # each with the check filter it goes through, if any
    autoescape: bool
    literal: int  # the characters of the text, charged as each rendering writes them

    def render(self, variables: Mapping[str, Any]) -> str | None:
        """The rendering, or None where Jinja2 must render it (see the module)."""
        try:
            written, size = self._values(variables)
        except Exception:  # noqa: BLE001 - Jinja2 renders it again and says what went wrong, with its line
            return None
        if written is None:
            return None
        budget = current()
        size += self.literal
        if budget.output + size > budget.max_output:
            return None  # Jinja2's guards refuse it, naming the limit
        budget.output += size
        pieces = [self.texts[0]]
        for value, text in zip(written, self.texts[1:], strict=True):
            pieces += (value, text)
        return "".join(pieces)

    def _values(self, variables: Mapping[str, Any]) -> tuple[list[str] | None, int]:
        written: list[str] = []
        size = 0
        for name, check in self.names:
            value = variables.get(name, written)  # ``written``: a default no variable can be
            if value is written or type(value) not in _SCALARS:
                return None, 0
            if check is not None:
                value = check(value)
            text = str(value)
            size += len(text)  # charged as the output guard charges it: before it is escaped
            written.append(escaped(text) if self.autoescape else text)
        return written, size


def escaped(text: str) -> str:
    """``markupsafe.escape``'s characters, as a plain string: its ``Markup`` costs three times as much to make."""
    return (text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;").replace("'", "&#39;")
            .replace('"', "&#34;"))


def substitution(tree: nodes.Template, autoescape: bool, checks: Mapping[str, Check]) -> Substitution | None:
    """The parsed template (before its guards are added) as a ``Substitution``, or None where it does more than
    write names and text: any statement, expression, filter other than ``checks``, or a special name."""
    texts, names, text = [], [], ""
    for output in tree.body:
        if not isinstance(output, nodes.Output):
            return None
        for child in output.nodes:
            if isinstance(child, nodes.TemplateData):
                text += child.data
                continue
            found = _name(child, checks)
            if found is None:
                return None
            texts.append(text)
            names.append(found)
            text = ""
    texts.append(text)
    return Substitution(tuple(texts), tuple(names), autoescape, sum(len(text) for text in texts))


def _name(node: nodes.Node, checks: Mapping[str, Check]) -> tuple[str, Check | None] | None:
    check = None
    if isinstance(node, nodes.Filter) and node.name in checks and not (node.args or node.kwargs or node.dyn_args
                                                                        or node.dyn_kwargs):
        check, node = checks[node.name], node.node
    if isinstance(node, nodes.Name) and node.ctx == "load" and node.name not in _SPECIAL:
        return node.name, check
    return None
