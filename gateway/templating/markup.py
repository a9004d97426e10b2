"""HTML and CSS read as far as ``preinline`` needs: markup as a stream of events (text, comments, tags and their
attributes, the text of scripts and styles), whether a piece of markup closes what it opens, and the selectors of
a stylesheet's rules.

The markup is read here rather than by a parser: html5ever (inside css-inline) and libxml2 (inside lxml) give a
tree, not where in the markup as written each piece was.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from html import unescape

VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
                  "wbr", "param", "keygen", "basefont", "bgsound", "frame"})
RAW_TEXT = frozenset({"script", "style", "xmp", "iframe", "noembed", "noframes", "noscript", "plaintext"})
ESCAPABLE_TEXT = frozenset({"title", "textarea"})
# Where the parser moves text (and most elements) out, to before the table: "foster parenting".
FOSTERING = frozenset({"table", "tbody", "thead", "tfoot", "tr", "colgroup", "select"})
IMPLIED = frozenset({"tbody"})  # what the parser writes in a table that the markup may leave out
_NAME = re.compile(r"[A-Za-z][^\s/>]*")  # "<" and no letter is text
_ATTRIBUTE = re.compile(r"[^\s/>=]+")  # stops at "=": a name runs no further than itself
_UNQUOTED = re.compile(r"[^\s>]*")


def selectors(css: str) -> Iterator[str]:
    """The selector list of each top-level rule, as written (an at-rule's, ``@media``'s, stays a stylesheet: it is
    not inlined). Read by tinycss2 (the templates extra), so comments and strings are read as a browser reads them."""
    import tinycss2

    for rule in tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True):
        if rule.type == "qualified-rule":
            yield tinycss2.serialize(rule.prelude).strip()
        elif rule.type == "error":
            yield "\\"  # CSS it cannot read: a selector no rule of inlining once allows


def events(html: str) -> Iterator[tuple[str, str, str]]:
    """HTML as events: ("text", "", text), ("comment", "", data), ("start", name, "/" if self-closing),
    ("attr", name, value), ("end", name, ""), ("raw", name, text of a script or style...). Quote-aware: a ">" in
    an attribute's value ends no tag."""
    position = 0
    while position < len(html):
        start = html.find("<", position)
        end_of_text = len(html) if start < 0 else start
        if end_of_text > position:
            yield "text", "", html[position:end_of_text]
        if start < 0:
            return
        if html.startswith("<!--", start):
            end = html.find("-->", start + 4)
            end = len(html) if end < 0 else end
            yield "comment", "", html[start + 4:end]
            position = end + 3
        elif html.startswith(("<!", "<?", "</"), start):
            end = html.find(">", start)
            end = len(html) if end < 0 else end
            if html.startswith("</", start):
                yield "end", html[start + 2:end].strip().lower(), ""
            position = end + 1
        else:
            position = yield from _start_tag(html, start)


def _start_tag(html: str, start: int) -> Iterator[tuple[str, str, str]]:
    found = _NAME.match(html, start + 1)
    if found is None:
        yield "text", "", "<"
        return start + 1
    name, position = found.group().lower(), found.end()
    attributes: list[tuple[str, str, str]] = []
    while position < len(html) and html[position] not in ">":
        if html[position].isspace() or html.startswith("/", position) and not html.startswith("/>", position):
            position += 1
            continue
        if html.startswith("/>", position):
            break
        key = _ATTRIBUTE.match(html, position)
        attribute = key.group() if key else html[position]
        position += len(attribute)
        value = ""
        if html.startswith("=", position):
            quote = html[position + 1:position + 2]
            if quote in ("'", '"'):
                end = html.find(quote, position + 2)
                end = len(html) if end < 0 else end
                value, position = html[position + 2:end], end + 1
            else:
                found = _UNQUOTED.match(html, position + 1)
                value, position = found.group(), found.end()
        attributes.append(("attr", attribute.lower(), value))
    closing = "/" if html.startswith("/>", position) else ""
    position = html.find(">", position) + 1 or len(html)
    yield "start", name, closing
    yield from attributes
    if name in RAW_TEXT:
        closed = re.compile(f"</{re.escape(name)}", re.IGNORECASE).search(html, position)
        end = closed.start() if closed else len(html)
        yield "raw", name, html[position:end]
        position = end
    return position


def balanced(html: str) -> bool:
    """Whether markup closes every element it opens, in order, with no ``<style>`` (a rule written in a block)."""
    stack: list[str] = []
    for event, name, value in events(html):
        if event == "start" and name == "style":
            return False
        if event == "start" and name not in VOID and name not in RAW_TEXT and not value:
            stack.append(name)
        elif event == "end" and name not in RAW_TEXT:
            if not stack or stack.pop() != name:
                return False
    return not stack


def placements(html: str, words: re.Pattern[str]) -> dict[int, list[tuple[str, int, str]]]:
    """Where each of ``words`` (numbered by its first group) is: its context ("text"; "escapable" in a title or a
    textarea; "comment"; "node" for a comment that is the word alone; "attr:<name>" in an attribute's value; "tag"
    in a tag's or an attribute's name; "raw" in a script or a style), the element it is in (a serial number), and
    where that is: "head" (outside the body), "table" (where text is moved out, before the table), or "flow"."""
    found: dict[int, list[tuple[str, int, str]]] = {}
    stack: list[tuple[str, int]] = [("", 0)]
    serials = itertools.count(1)
    bodies = 0

    def note(text: str, context: str) -> None:
        for word in words.finditer(text):
            place = "head" if not bodies else "table" if stack[-1][0] in FOSTERING else "flow"
            found.setdefault(int(word.group(1)), []).append((context, stack[-1][1], place))

    for event, name, value in events(html):
        if event == "text":
            note(value, "escapable" if stack[-1][0] in ESCAPABLE_TEXT else "text")
        elif event == "comment":
            note(value, "node" if words.fullmatch(value) else "comment")
        elif event == "attr":
            note(name, "tag")
            note(value, f"attr:{name}")
        elif event == "raw":
            note(value, "raw")
        elif event == "start":
            note(name, "tag")
            if name not in VOID and not value:
                stack.append((name, next(serials)))
                bodies += name == "body"
        elif event == "end" and len(stack) > 1 and stack[-1][0] == name:
            bodies -= stack.pop()[0] == "body"
    return found


def content(html: str) -> tuple[str, ...]:
    """What markup holds, to tell whether the parser read it otherwise than written (moved some of it, closed an
    element earlier): its tags' names (but those the parser adds), its comments and its text, character
    references read and whitespace left out."""
    held: list[str] = []
    for event, name, value in events(html):
        if event in ("start", "end") and name not in IMPLIED:
            held.append(f"<{name}" if event == "start" else f"</{name}")
        elif event == "comment":
            held.append(f"<!--{value}")
        elif event in ("text", "raw") and (text := "".join(unescape(value).split())):
            held.append(text)
    return tuple(held)


def outline(html: str, words: re.Pattern[str]) -> tuple[str, ...]:
    """Its tags, start and end, and ``words`` (as text or as a comment alone), in order: the elements the parser
    made and where each word is among them."""
    held: list[str] = []
    for event, name, value in events(html):
        if event in ("start", "end"):
            held.append(f"<{name}" if event == "start" else f"</{name}")
        elif event in ("text", "comment"):
            held.extend(word.group() for word in words.finditer(value))
    return tuple(held)
