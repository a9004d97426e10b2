"""A template's HTML part with its CSS inlined once, when the template is compiled, so that a rendering need not run
css-inline (about a sixth of a template send's instructions): ``preinline`` gives the template source with the
``style=`` attributes written in and its Jinja2 tags where they were, or None where that cannot be shown to give
what inlining each rendering gives. Then each rendering inlines, as before.

Written here because css-inline inlines documents, not templates, and no library inlines into a template. Every
Jinja2 tag is replaced by a placeholder that CSS cannot see (a comment in the text, a word in an attribute's
value), the document inlined, and the tags put back. That is the same as inlining each rendering when what the
template writes cannot change which rules match which element, so it is used only where:

- every rule's selector looks at elements, classes, ids and their ancestors alone (no ``+``, ``~``, no ``:`` but
  ``:hover`` and the like, which no inliner matches; no
  ``[attribute]`` once a tag is written in an attribute), so repeating or leaving out an element changes nothing
  else's style;
- every ``{% if %}`` and ``{% for %}`` holds whole elements (each branch's tags close what they open, the parser
  put every tag of the block under one parent and read what is between them as written: nothing moved out of a
  table, no end tag it had implied), so every element has the same ancestors in every rendering;
- no ``<style>`` is inside such a block, a tag is written only in text or in an attribute's quoted value (never
  ``class``, ``id`` or ``style``), and nothing written can be markup (no ``safe``, ``urlize`` or ``xmlattr``, no
  ``{% macro %}``, ``{% filter %}``, ``{% autoescape %}`` or ``{% raw %}``; the variables are checked at rendering:
  JSON's types only, since an object's attribute may be ``Markup``), and no expression is written where the parser
  moves text out of a table (between its rows or cells);
- no tag follows text that may begin a character reference (``&amp{{ x }}``), the rendering holds no carriage
  return or NUL (which html5ever reads anew), and text where a comment stands makes no other elements;
- each placeholder comes back once, where it was put, and nothing the inliner wrote reads as a tag.
A rendering that fails is rendered again as written and inlined after, so its error names the line as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from jinja2 import TemplateSyntaxError, nodes

from mail_gateway.templating.jinja_tags import STATEMENTS, Tag, emits_markup, split, unused_word
from mail_gateway.templating.markup import balanced, content, events, outline, placements, selectors

STYLING_ATTRIBUTES = frozenset({"class", "id", "style"})
MAX_TAGS = 5000  # Jinja2 tags: a mail's template writes a few dozen
MAX_NESTING = 50  # blocks inside blocks
# Text ending as a character reference may begin ("&amp" before a tag): whether it is one depends on what the tag
# writes after it ("&amp/" is "&/" in an attribute, "&ampx" is not), which no placeholder can stand for.
_REFERENCE_END = re.compile(r"&#?[A-Za-z0-9]*$")
# Pseudo-classes of a user's doing, which an inliner never matches (nor mail clients, mostly, but for :hover):
# a rule with one styles no element, however the elements around it change.
_DYNAMIC = re.compile(r":(?:hover|active|focus|focus-visible|focus-within|visited)(?![\w-])")


def preinline(source: str, tree: nodes.Template, inline: Callable[[str], str]) -> str | None:
    """``source`` (parsed: ``tree``) with its CSS inlined by ``inline`` and its tags kept, or None (see the
    module)."""
    read = split(source)
    if read is None or len(read[1]) > MAX_TAGS or emits_markup(tree):
        return None
    pieces, tags = read
    if any(isinstance(tag, int) and isinstance(text, str) and _REFERENCE_END.search(text)
           for text, tag in zip(pieces, pieces[1:], strict=False)):
        return None
    mark = unused_word(source)
    first = inline("".join(p if isinstance(p, str) else f"{mark}{p}x" for p in pieces))
    if not _found_once(placements(first, _words(mark)), tags, "context"):
        return None
    written_text = "".join(piece for piece in pieces if isinstance(piece, str))
    styles = " ".join(text for event, name, text in events(written_text) if event == "raw" and name == "style")
    if not _usable(tags, styles):
        return None
    written = "".join(p if isinstance(p, str) else _placeholder(tags[p], mark, p) for p in pieces)
    second = inline(written)
    if not _found_once(placements(second, _words(mark)), tags, "second"):
        return None
    # Text read where a comment stands may make elements the comment does not ("<b><p>x</b>y": y is put in a new
    # <b>): with the expressions of the text written as words, the parser must make the same elements.
    as_text = inline(_with_text_words(pieces, tags, mark))
    if outline(as_text, _words(mark)) != outline(second, _words(mark)) or _names_an_attribute(as_text, mark):
        return None
    if not _blocks_hold_elements(tags, written, second, mark):
        return None
    return _restore(second, tags, mark)


def _with_text_words(pieces: list[str | int], tags: list[Tag], mark: str) -> str:
    """The expressions of the text written as words, and those of attributes as two words: a value that is not
    quoted ends at the space, and the second word is read as an attribute's name (a rendering's spaces in it would
    write attributes, ``title={{ x }}`` with "a class=b")."""
    return "".join(p if isinstance(p, str) else _placeholder(tags[p], mark, p) if tags[p].statement
                   else f"{mark}{p}x" if tags[p].context == "text"
                   else f"{mark}{p}x {mark}{p}x" if tags[p].context.startswith("attr:")
                   else _placeholder(tags[p], mark, p) for p in pieces)


def _names_an_attribute(html: str, mark: str) -> bool:
    """Whether a word names an attribute: the inliner writes an empty one ``name=""``, which no value it quotes
    holds."""
    return re.search(re.escape(mark) + r'\d+x=""', html) is not None


def _words(mark: str) -> re.Pattern[str]:
    return re.compile(re.escape(mark) + r"(\d+)x")


def _placeholder(tag: Tag, mark: str, index: int) -> str:
    word = f"{mark}{index}x"
    return f"<!--{word}-->" if tag.context == "text" else word


def _usable(tags: list[Tag], css: str) -> bool:
    in_attributes = False
    for tag in tags:
        context = tag.context
        if context.startswith("attr:"):
            if tag.statement or context[5:] in STYLING_ATTRIBUTES or "(" in tag.text:
                return False
            in_attributes = True
        elif context != "text" and (tag.statement or context not in ("escapable", "comment")):
            return False
    refused = set(":+~\\" + ("[" if in_attributes else ""))
    return all(not set(_DYNAMIC.sub("", selector)) & refused for selector in selectors(css))



def _found_once(found: dict[int, list[tuple[str, int, str]]], tags: list[Tag], which: str) -> bool:
    """Whether every placeholder came back once; the first pass says where each is, the second that each is
    where it was put: a tag of the text as a comment in the body, an expression's where its text stays."""
    if sorted(found) != list(range(len(tags))) or any(len(places) != 1 for places in found.values()):
        return False
    for index, tag in enumerate(tags):
        (context, parent, place), = found[index]
        if which == "context":
            tag.context = context
        elif context != ("node" if tag.context == "text" else tag.context):
            return False
        elif tag.context == "text" and (place == "head" or place == "table" and not tag.statement):
            return False
        tag.parent = parent
    return True


def _blocks_hold_elements(tags: list[Tag], written: str, inlined: str, mark: str) -> bool:
    """Whether each ``{% if %}`` and ``{% for %}`` holds whole elements: all its tags under one parent, the markup
    between each two of them closing what it opens, as written, and left between them by the parser."""
    blocks: list[list[int]] = []
    open_blocks: list[list[int]] = []
    for index, tag in enumerate(tags):
        role = STATEMENTS.get(tag.statement or "")
        if role == "open" and len(open_blocks) >= MAX_NESTING:
            return False
        if role == "open":
            open_blocks.append([index])
            blocks.append(open_blocks[-1])
        elif role in ("middle", "close") and open_blocks:
            open_blocks[-1].append(index)
            if role == "close":
                open_blocks.pop()
    comment = re.compile(f"<!--{re.escape(mark)}(\\d+)x-->")
    before = {int(found.group(1)): found.span() for found in comment.finditer(written)}
    after = {int(found.group(1)): found.span() for found in comment.finditer(inlined)}
    for block in blocks:  # each is looked at once for each block around it: MAX_NESTING times at most
        if len({tags[index].parent for index in block}) != 1:
            return False
        for one, other in zip(block, block[1:], strict=False):
            markup = written[before[one][1]:before[other][0]]
            if not balanced(markup) or content(markup) != content(inlined[after[one][1]:after[other][0]]):
                return False
    return not open_blocks


def _restore(html: str, tags: list[Tag], mark: str) -> str | None:
    """The inlined document with the template's tags put back, or None if Jinja2 would read it otherwise (text
    the inliner wrote that reads as a tag, ``&#123;&#123;`` decoded to ``{{``)."""
    words = re.compile(f"(<!--)?{re.escape(mark)}(\\d+)x(-->)?")

    def tag_of(word: re.Match[str]) -> str:
        tag = tags[int(word.group(2))]
        if tag.context == "text":
            return tag.text
        return (word.group(1) or "") + tag.text + (word.group(3) or "")

    restored = words.sub(tag_of, html)
    try:
        again = split(restored, comments=False)
    except TemplateSyntaxError:
        return None
    if again is None or sorted(tag.text for tag in again[1]) != sorted(tag.text for tag in tags):
        return None
    # The inliner may write an element's attributes in another order, and so run their tags in another order:
    # the same, as none of them calls anything (``_usable``), which a state could change (joiner(), cycler).
    if [tag.text for tag in again[1] if tag.statement] != [tag.text for tag in tags if tag.statement]:
        return None
    return restored
