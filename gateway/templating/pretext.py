"""A template's text part made from its HTML once, when the template is compiled, for a template that has no text
part of its own and whose CSS is inlined once (``preinline``): a rendering then runs a small text template (the
text the stylesheet of ``html`` reads out of the HTML, with the template's tags where they were) rather than
rendering the HTML a second time, parsing it and running the stylesheet over it (about a seventh of such a
template send's instructions).

Written here because no library makes a template's text from a template. Every expression is replaced by a
placeholder of two words, every statement by a comment, and the document read by the stylesheet as at each
rendering but for links (whose address is shown or not by what their text is, known only once rendered) and the
comments (written out). The text it gives, with the tags put back, is the text template. It is used only where
that gives the text each rendering gives:

- each statement's comment comes out once, under the same parent as its block's other statements (so the block
  holds whole elements, as ``preinline`` also shows), in the order written, in no link and not in ``html``;
- each expression's words come out whole wherever they come out (not in a ``<pre>``, whose spaces the stylesheet
  rewrites), no attribute's name holds one (a tag in an unquoted value, which could write attributes), and one
  that calls a function comes out once; no link holds a link;
- a tag's whitespace control (``{%-``) is read as the lexer leaves it, and the text holds no ``{``.

At each rendering, an expression must write something other than spaces (the parser may place blank text
otherwise than the words) and nothing the parser reads anew (control characters, the stylesheet's marks), and the
text must hold no ``<`` and no character reference but those autoescaping writes; else the HTML is rendered and
read as before.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from jinja2 import Template, TemplateSyntaxError
from markupsafe import escape

from mail_gateway.errors import TemplateError
from mail_gateway.templating.jinja_tags import STATEMENTS, Tag, split, unused_word
from mail_gateway.templating.sandbox import GuardedEnvironment

# What the stylesheet writes for a link: its text as shown, its text as read, and its address, if it has one.
LINK, LINK_READ, LINK_ADDRESS, HAS_ADDRESS, LINK_END = "\ue004", "\ue005", "\ue006", "\ue007", "\ue008"
_OWN_CHARACTERS = re.compile("[\ue000-\ue00f]")  # the marks of ``html`` and these
# What the parser reads otherwise than it is written: control characters, noncharacters, and a carriage return.
_UNREAD = re.compile("[\x00-\x08\x0b-\x1f\x7f\ufffe\uffff\ue000-\ue00f]")
_OTHER_REFERENCE = re.compile("&(?!(?:amp|lt|gt|#34|#39);)")  # autoescaping writes only these
_LINKS = re.compile(f"{LINK}([^{LINK}-{LINK_END}]*){LINK_READ}([^{LINK}-{LINK_END}]*){LINK_ADDRESS}"
                    f"(?:{HAS_ADDRESS}([^{LINK}-{LINK_END}]*))?{LINK_END}")
_XPATH_SPACES = re.compile("[ \t\r\n]+")
CHECK = "pretext_checked"  # the filter each expression of the text template goes through
_WHITESPACE_CONTROL = re.compile(r"^(?:\{\{|\{%)[-+]|[-+](?:\}\}|%\})$")
_TAG_END = re.compile(r"[-+]?(\}\}|%\})\s*$")
_RULES = b"""<xsl:param name="statement"/>
<xsl:template match="a">&#xE004;<xsl:apply-templates/>&#xE005;<xsl:value-of select="."/>&#xE006;\
<xsl:if test="@href">&#xE007;<xsl:value-of select="@href"/></xsl:if>&#xE008;</xsl:template>
<xsl:template match="comment()"><xsl:if test="starts-with(., $statement)"><xsl:value-of select="."/></xsl:if>\
</xsl:template>
"""


def _plain_value(value: Any) -> Any:
    written = str(value)
    if not written.strip(" \t\n\r") or _UNREAD.search(written):
        raise TemplateError("an expression writes what its text made once cannot stand for")
    return value


TEXT_OF_HTML = GuardedEnvironment(autoescape=True)  # expressions written as in the HTML part, and checked
TEXT_OF_HTML.filters[CHECK] = _plain_value
TEXT_OF_HTML.value_checks[CHECK] = _plain_value


def compile_pretext(source: str) -> Template | None:
    """The text template of the HTML part ``source``, or None (see the module)."""
    from lxml import etree

    read = split(source)
    if read is None or _OWN_CHARACTERS.search(source):
        return None
    pieces, tags = read
    written = [_without_whitespace_control(tag.text) for tag in tags]
    if any(_WHITESPACE_CONTROL.search(text) for text in written):
        return None
    mark = unused_word(source)
    document = "".join(p if isinstance(p, str) else _placeholder(tags[p], mark, p) for p in pieces)
    try:
        root = etree.fromstring(document, etree.HTMLParser(remove_pis=True))
    except etree.LxmlError:
        return None
    if root is None or not _placed(root, tags, mark):
        return None
    text = str(_stylesheet()(root, statement=etree.XSLT.strparam(f"{mark}s")))
    template_source = _with_tags(text, tags, written, mark)
    if template_source is None:
        return None
    try:
        template = TEXT_OF_HTML.compile_guarded(template_source)
    except (TemplateError, TemplateSyntaxError, RecursionError, SyntaxError, MemoryError):
        return None
    template.globals = dict(template.globals)  # as compile_template does, for the same reason
    return template


@functools.cache
def _stylesheet() -> Any:
    """The stylesheet of ``html`` with links and statements written as the text template reads them; made with
    the first template, as lxml is the templates extra's."""
    from mail_gateway.templating.html import RULES, stylesheet

    return stylesheet(RULES + _RULES)


def _without_whitespace_control(tag: str) -> str:
    """``{%- if x -%}`` written ``{% if x %}``: the lexer has already taken the whitespace it strips out of the
    text beside it (and put what follows ``-%}`` in the tag), and the text made once must not strip its own."""
    begin = 3 if tag[2:3] in ("-", "+") else 2
    end = _TAG_END.search(tag)
    return tag if end is None else tag[:2] + tag[begin:end.start()] + end.group(1)


def _placeholder(tag: Tag, mark: str, index: int) -> str:
    return f"<!--{mark}s{index}x-->" if tag.statement else f"{mark}{index}x {mark}{index}y"


def _placed(root: Any, tags: list[Tag], mark: str) -> bool:
    """Whether each statement's comment is where its block's text can be read apart from the rest: under the
    parent of its block's other statements, not in ``html`` nor in a link; and whether no attribute's name holds a
    placeholder and no link holds a link."""
    parents: dict[int, Any] = {}
    for comment in root.getroottree().xpath("//comment()[starts-with(., $s)]", s=f"{mark}s"):
        found = re.fullmatch(f"{mark}s(\\d+)x", comment.text or "")
        parent = comment.getparent()
        if found is None or parent is None or parent.tag == "html" or int(found.group(1)) in parents:
            return False
        if next(comment.iterancestors("a"), None) is not None:
            return False
        parents[int(found.group(1))] = parent
    if any(mark in name for element in root.iter() for name in element.keys()):
        return False
    if any(next(link.iterancestors("a"), None) is not None for link in root.iter("a")):
        return False
    open_blocks: list[Any] = []
    for index, tag in enumerate(tags):
        if not tag.statement:
            continue
        if index not in parents:  # read as text, not as a comment
            return False
        role = STATEMENTS[tag.statement]
        if role == "open":
            open_blocks.append(parents[index])
        elif role in ("middle", "close") and (not open_blocks or open_blocks[-1] is not parents[index]):
            return False
        if role == "close":
            open_blocks.pop()
    return not open_blocks


def _with_tags(text: str, tags: list[Tag], written_tags: list[str], mark: str) -> str | None:
    """The stylesheet's ``text`` with its placeholders made tags again and the rest escaped as the HTML part's
    expressions are, or None where it is not read as written (see the module)."""
    words = re.compile(f"{mark}s(\\d+)x|{mark}(\\d+)x {mark}\\2y")
    found = [(int(m.group(1) or m.group(2)), m.span()) for m in words.finditer(text)]
    counts = [0] * len(tags)
    for index, _ in found:
        counts[index] += 1
    leftover = words.sub("", text)
    if mark in leftover or "{" in leftover:
        return None
    for index, tag in enumerate(tags):
        if (tag.statement or "(" in tag.text) and counts[index] != 1:
            return None
    if [i for i, _ in found if tags[i].statement] != [i for i, tag in enumerate(tags) if tag.statement]:
        return None
    written, position = [], 0
    for index, (start, end) in found:
        tag = written_tags[index]
        written += [str(escape(text[position:start])), tag if tags[index].statement else _checked(tag)]
        position = end
    written.append(str(escape(text[position:])))
    return "".join(written)


def _checked(expression: str) -> str:
    """``{{ x }}`` written ``{{ (x)|pretext_checked }}``: the filter sees what it writes, not the text around."""
    return f"{{{{ ({expression[2:-2]})|{CHECK} }}}}"


def finish_pretext(rendered: str) -> str:
    """The text part from the text template's rendering; ``TemplateError`` where the text made once cannot stand
    for what the HTML would give (the HTML is then rendered and read)."""
    from mail_gateway.templating.html import finish_text

    if "<" in rendered:
        raise TemplateError("its text made once cannot stand for this rendering")
    text = _unescaped(rendered) if "&" in rendered else rendered
    return finish_text(_LINKS.sub(_link, text) if LINK in text else text)


def _unescaped(text: str) -> str:
    if _OTHER_REFERENCE.search(text):
        raise TemplateError("its text made once cannot stand for this rendering")
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&#34;", '"').replace("&#39;", "'")
    return text.replace("&amp;", "&")


def _link(found: re.Match[str]) -> str:
    """A link as the stylesheet of ``html`` writes it: its text, then its address where that says more."""
    shown, read, address = found.groups()
    if address is None or address.startswith(("#", "javascript:")):
        return shown
    read = _XPATH_SPACES.sub(" ", read).strip(" ")  # XPath's normalize-space(): these four alone are spaces
    if read == address:
        return shown
    return f"{shown} ({address})" if read else f"{shown} {address}"
