"""A template's source as ``preinline`` sees it: its text, and its Jinja2 tags (``{{ expression }}``,
``{% statement %}``) as written, each with the statement it is, if any; and whether it may write markup of its own
making. Only the statements whose effect on the markup ``preinline`` can judge are read; for any other, nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from jinja2 import nodes

from mail_gateway.templating.sandbox import HTML

# What each statement read does to the blocks: opens one, goes on to its next branch, closes it, or neither.
STATEMENTS = {"if": "open", "for": "open", "elif": "middle", "else": "middle", "endif": "close", "endfor": "close",
              "set": "single"}
MARKUP_FILTERS = frozenset({"safe", "urlize", "xmlattr"})
UNREAD_TOKENS = ("raw_begin", "linestatement_begin", "lineblock_begin")  # what a template's text hides from Jinja2


@dataclass
class Tag:
    text: str  # as written: "{{ name }}", "{%- if paid %}"
    statement: str | None  # "if", "endfor"... None for an expression
    context: str = ""  # where the first pass found it: text, escapable, comment, attr:<name>, or elsewhere
    parent: int = 0  # the element it is in, in the second pass


def split(source: str, *, comments: bool = True) -> tuple[list[str | int], list[Tag]] | None:
    """The source as text and the indexes of its tags (comments dropped), or None for a statement not handled (or
    a comment, with ``comments=False``)."""
    pieces: list[str | int] = []
    tags: list[Tag] = []
    current: list[str] | None = None
    kind = ""
    for _, token, value in HTML.lexer.tokeniter(source, None):
        if token in UNREAD_TOKENS or token == "comment_begin" and not comments:
            return None
        if token in ("variable_begin", "block_begin", "comment_begin"):
            current, kind = [value], token
        elif token in ("variable_end", "block_end", "comment_end") and current is not None:
            current.append(value)
            if kind != "comment_begin":
                tag = _tag(current, kind == "block_begin")
                if tag is None:
                    return None
                pieces.append(len(tags))
                tags.append(tag)
            current = None
        elif current is not None:
            current.append(value)
        else:
            pieces.append(value)
    return pieces, tags


def _tag(values: list[str], statement: bool) -> Tag | None:
    text = "".join(values)
    if not statement:
        return Tag(text, None)
    words = [v for v in values[1:-1] if v.strip()]
    name = words[0] if words else ""
    if STATEMENTS.get(name) is None or (name == "set" and "=" not in words):
        return None
    return Tag(text, name)


def emits_markup(tree: nodes.Template) -> bool:
    """Whether the template may write markup of its own making: a filter that makes it (``|safe``, or named by a
    string, ``map('safe')``), or a statement outside those handled."""
    for node in tree.find_all((nodes.Filter, nodes.Const, nodes.Macro, nodes.CallBlock, nodes.FilterBlock,
                               nodes.ScopedEvalContextModifier, nodes.Block, nodes.Include, nodes.Import,
                               nodes.FromImport, nodes.Extends)):
        if isinstance(node, nodes.Filter):
            if node.name in MARKUP_FILTERS:
                return True
        elif isinstance(node, nodes.Const):
            if isinstance(node.value, str) and node.value in MARKUP_FILTERS:
                return True
        else:
            return True
    return False


def draws_at_random(tree: nodes.Template) -> bool:
    """Whether the template may write something else each time it is rendered (``|random``, or by its name)."""
    return any(isinstance(node, nodes.Filter) and node.name == "random" or isinstance(node, nodes.Const)
               and node.value == "random" for node in tree.find_all((nodes.Filter, nodes.Const)))


def unused_word(source: str) -> str:
    """A word found nowhere in the source, so that every place it appears is a placeholder's."""
    while True:
        word = f"mgpi{secrets.token_hex(4)}n"
        if word not in source.lower():
            return word
