"""What a rendered HTML part goes through: its ``<style>`` rules inlined into ``style=`` attributes (mail clients
drop stylesheets), and, when the template has no text part, a text part made from it.

CSS is inlined by ``css-inline``, which never loads a stylesheet a ``<link>`` names (nothing remote, no local
file); ``@media`` rules, which cannot be inlined, stay in a ``<style>`` element.

The text is made here, by a small XSLT stylesheet run by lxml (libxml2's HTML parser, libxslt), rather than by a
library, because none fits: inscriptis lays the text out well but costs about 0.8 ms for a 1.3 KB message (as
much as the rest of a send through the HTTP API); html-text drops where links lead, which a text part of a mail
must keep; html2text is GPL-3.0, this package MIT. Blocks become lines (paragraphs, headings, tables and lists
with a blank line around them), list items start with ``- ``, table cells are separated by spaces, a link is
followed by its address, an image gives its ``alt`` text, ``<pre>`` keeps its lines and spaces, and the head,
scripts and styles are left out. The stylesheet runs in C: a walk over the tree in Python cost twice as much.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import css_inline
from lxml import etree

from mail_gateway.errors import TemplateError

_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)
MAX_DEPTH = 1000  # a mail's HTML nests a few dozen elements deep
# A tag's start; where it ends is found with str.find, not by the pattern: one whose name and attributes may
# cover the same characters tries every way to split them, which for "<a" written a thousand times without a
# ">" was minutes (cubic in the HTML's length).
_TAG_START = re.compile(r"<(/?)([A-Za-z][^\s/>]*)")
_NOT_NESTED = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
                         "track", "wbr", "p", "li", "dt", "dd", "td", "th", "tr", "tbody", "thead", "tfoot",
                         "option", "colgroup"})
# Marks the stylesheet writes around blocks (a run of them is one line break, or a blank line where a paragraph's
# is among them), for line breaks that stay as they are (<br>, a <pre>'s) and for a <pre>'s spaces: characters of
# Unicode's private use area, which are not whitespace, so collapsing the spaces of the text keeps them.
BREAK, PARAGRAPH, LINE, SPACE = "\ue000", "\ue001", "\ue002", "\ue003"
MARKS = (BREAK, PARAGRAPH, LINE, SPACE)
# The stylesheet's rules but for links', which ``pretext`` writes its own way (it reads a link's text and address
# after the template is rendered).
RULES = b"""<xsl:output method="text" encoding="UTF-8"/>
<xsl:template match="head|script|style|template|title|noscript"/>
<xsl:template match="p|h1|h2|h3|h4|h5|h6|table|ul|ol|dl|blockquote|hr">&#xE001;<xsl:apply-templates/>&#xE001;\
</xsl:template>
<xsl:template match="div|tr|dt|dd|section|article|header|footer|main|nav|aside|figure|figcaption|address|form|\
fieldset|thead|tbody|tfoot">&#xE000;<xsl:apply-templates/>&#xE000;</xsl:template>
<xsl:template match="li">&#xE000;- <xsl:apply-templates/>&#xE000;</xsl:template>
<xsl:template match="td|th"><xsl:text> </xsl:text><xsl:apply-templates/><xsl:text> </xsl:text></xsl:template>
<xsl:template match="br">&#xE002;</xsl:template>
<xsl:template match="img"><xsl:value-of select="@alt"/></xsl:template>
<xsl:template match="pre">&#xE001;<xsl:value-of select="translate(., ' &#10;', '&#xE003;&#xE002;')"/>&#xE001;\
</xsl:template>
"""
_LINKS = b"""<xsl:template match="a"><xsl:apply-templates/><xsl:if test="@href and not(starts-with(@href, '#')) and \
not(starts-with(@href, 'javascript:')) and normalize-space(.) != @href"><xsl:choose>\
<xsl:when test="normalize-space(.)"> (<xsl:value-of select="@href"/>)</xsl:when>\
<xsl:otherwise><xsl:text> </xsl:text><xsl:value-of select="@href"/></xsl:otherwise></xsl:choose></xsl:if></xsl:template>
"""


def stylesheet(rules: bytes) -> etree.XSLT:
    """The stylesheet of ``rules``, which reads and writes nothing but the document it is given."""
    source = b'<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">' + rules
    return etree.XSLT(etree.XML(source + b"</xsl:stylesheet>"), access_control=etree.XSLTAccessControl.DENY_ALL)


_TEXT = stylesheet(RULES + _LINKS)
_PARSER = etree.HTMLParser(remove_comments=True, remove_pis=True)


def inline_css(html: str) -> str:
    if html.count("<") > MAX_DEPTH:  # no deeper than it has tags: most parts need no closer look
        check_depth(html)
    try:
        return _INLINER.inline(html)
    except ValueError as exc:  # css-inline's errors are ValueErrors: CSS it cannot read
        raise TemplateError(f"its CSS cannot be inlined: {exc}", part="html") from exc


def check_depth(html: str) -> None:
    """``TemplateError`` for HTML whose elements nest deeper than ``MAX_DEPTH``: css-inline's parser recurses
    once per level, and some 12,000 levels overflow the thread's stack and end the process. Counted over the tags
    as written; elements HTML closes by themselves (``<p>``, ``<li>``, table cells...) and void ones are left out,
    so careless markup is not taken for depth."""
    depth = deepest = 0
    for closing, name, self_closing in _tags(html):
        name = name.lower()
        if name in _NOT_NESTED or self_closing:
            continue
        depth = max(depth - 1, 0) if closing else depth + 1
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            raise TemplateError(f"its HTML nests elements more than {MAX_DEPTH} deep; nest less", part="html")


def _tags(html: str) -> Iterator[tuple[str, str, bool]]:
    """Each tag as ``(closing "/" or "", name, self-closing)``, from its "<" to the first ">" after its name, in
    one pass: no "<" is looked at twice, and once no ">" follows, nothing after is a tag."""
    position = 0
    while (start := html.find("<", position)) >= 0:
        if (tag := _TAG_START.match(html, start)) is None:
            position = start + 1
            continue
        end = html.find(">", tag.end())
        if end < 0:
            return
        yield tag.group(1), tag.group(2), html[end - 1] == "/"
        position = end + 1


def html_to_text(html: str) -> str:
    """The text of an HTML part, for a text part beside it."""
    for mark in MARKS:
        html = html.replace(mark, "")
    try:
        root = etree.fromstring(html, _PARSER) if html.strip() else None
    except etree.LxmlError:  # nothing a parser could make a document of (a lone comment)
        root = None
    if root is None:
        return ""
    return finish_text(str(_TEXT(root)))


def finish_text(text: str) -> str:
    """What the stylesheet wrote, its spaces collapsed and its marks made line breaks."""
    return _lines(" ".join(text.split()))


# A run of marks, with the spaces between and after them (the one before is taken with the line break it becomes).
_MARKS_RUN = re.compile(f"[{BREAK}{PARAGRAPH}{LINE}][{BREAK}{PARAGRAPH}{LINE} ]*")


def _breaks(run: str) -> str:
    """A run of marks as line breaks: a blank line where a paragraph's mark is among them, else one line break;
    each kept line break (``LINE``) its own."""
    if LINE not in run:
        return "\n\n" if PARAGRAPH in run else "\n"
    return "\n".join("\n\n" if PARAGRAPH in piece else "\n" if piece.strip(" ") else ""
                     for piece in run.split(LINE))


def _lines(text: str) -> str:
    """The marks made line breaks, in one pass over the text: one regular expression finds each run of marks, where
    string methods rewriting the whole text once per kind of mark and pair of marks took twice as long."""
    text = _MARKS_RUN.sub(lambda run: _breaks(run.group()), text)
    text = text.replace(" \n", "\n").strip("\n")  # spaces before a line break end no line
    return (text.replace(SPACE, " ") if SPACE in text else text) + "\n"  # a <pre>'s spaces last: they stay
