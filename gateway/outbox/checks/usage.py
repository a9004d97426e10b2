"""Where a message's HTML uses each feature: its elements and attributes (parsed with lxml), their inline styles
and its ``<style>`` blocks, named by ``features``, each with the lines of the HTML part that use it.

A line is where the element's start tag begins or, in a ``<style>`` block, where the rule begins (for a rule
inside ``@media``, where the ``@media`` rule begins): what a reader looks for in the source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import lxml.html
import tinycss2
from lxml import etree

from mail_gateway.outbox.checks.features import (
    Kind,
    attribute_features,
    declaration_features,
    element_features,
    stylesheet_features,
)

IMPLIED = {"html", "head", "body"}
LINES_LISTED = 20  # per feature: where to look, not an index of every use


@dataclass(slots=True)
class Use:
    kind: Kind
    lines: list[int] = field(default_factory=list)

    def at(self, line: int | None) -> None:
        if line is not None and line not in self.lines and len(self.lines) < LINES_LISTED:
            self.lines.append(line)


Usage = dict[str, Use]


def _add(found: Usage, named: Iterable[tuple[str, Kind]], line: int | None) -> None:
    for name, kind in named:
        found.setdefault(name, Use(kind)).at(line)


def _css(names: Iterable[str]) -> Iterable[tuple[str, Kind]]:
    return ((name, "css") for name in names)


def _stylesheet(found: Usage, text: str, first_line: int | None) -> None:
    for rule in tinycss2.parse_stylesheet(text, skip_comments=True, skip_whitespace=True):
        line = first_line + rule.source_line - 1 if first_line is not None else None
        _add(found, _css(stylesheet_features([rule])), line)


def used_features(html: str) -> Usage:
    """Every feature name the HTML uses, with its kind and lines; empty for HTML that cannot be parsed at all."""
    try:
        root = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return {}
    found: Usage = {}
    stripped = html.lstrip()
    if stripped[:9].lower() == "<!doctype":
        _add(found, [("html-doctype", "element")], html[:len(html) - len(stripped)].count("\n") + 1)
    for node in root.iter():
        if isinstance(node, etree._Comment):
            _add(found, [("html-comments", "element")], node.sourceline)
            continue
        if not isinstance(node.tag, str):
            continue
        tag, attributes = node.tag.lower(), {k.lower(): v for k, v in node.attrib.items()}
        if tag in IMPLIED and not re.search(rf"<{tag}[\s>/]", html, re.IGNORECASE):
            continue  # added by the parser around a fragment, not used by the message
        _add(found, element_features(tag, attributes), node.sourceline)
        _add(found, attribute_features(tag, attributes), node.sourceline)
        if "style" in attributes:
            declarations = tinycss2.parse_blocks_contents(attributes["style"], skip_comments=True)
            _add(found, _css(declaration_features(declarations)), node.sourceline)
        if tag == "style" and node.text:
            _stylesheet(found, node.text, node.sourceline)
    return found
