"""A template's text part made from its HTML once, when the template is compiled: every rendering gives the text
that rendering the HTML and reading it gives, and a template or a rendering where that cannot be shown is read at
each rendering, as before. (Templates made at random are compared in test_template_preinline.py too, whose
templates have no text part of their own.)"""

from __future__ import annotations

import dataclasses

import pytest
from test_template_preinline import HANDLED, LIMITS, VARIABLES, compiled

from mail_gateway.errors import TemplateError
from mail_gateway.templating.render import compile_template, render_template


def text_read_each_rendering(template, variables) -> str:
    return render_template(dataclasses.replace(template, inlined=None, text_made=None), variables, LIMITS).text


def assert_same_text(template, variables) -> None:
    try:
        each = text_read_each_rendering(template, variables)
    except TemplateError as exc:
        with pytest.raises(TemplateError) as caught:
            render_template(template, variables, LIMITS)
        assert str(caught.value) == str(exc)
        return
    assert render_template(template, variables, LIMITS).text == each


LINKS = ('<p><a href="{{ url }}">See it</a> <a href="{{ url }}">{{ url }}</a> <a href="{{ url }}">{{ name }}</a> '
         '<a href="{{ url }}"></a> <a href="?order={{ order }}&amp;x=1">order</a> <a href="#{{ order }}">top</a> '
         '<a href="">{{ name }}</a> <a>{{ name }}</a> <a href="{{ url }}"><img alt="{{ name }}" src="i.png"></a></p>')
LINK_VARIABLES = [{"url": url, "name": name, "order": order, "title": "t"}
                  for url, name, order in [("https://example.com/o", "Ann", "A-1"), ("See it", "See it", "1"),
                                           ("javascript:x()", "  Ann \t", "#"), ("#top", "https://x", "a b"),
                                           ("https://example.com/o", "https://example.com/o", "&")]]


@pytest.mark.parametrize("html", [*HANDLED, LINKS])
def test_a_text_made_once_is_the_text_each_rendering_reads(html) -> None:
    template = compiled(html)
    assert template.text_made is not None
    for variables in (VARIABLES if html != LINKS else LINK_VARIABLES):
        assert_same_text(template, variables)


def test_a_link_shows_its_address_where_its_text_does_not_say_it() -> None:
    text = render_template(compiled(LINKS), LINK_VARIABLES[0], LIMITS).text
    assert text == ("See it (https://example.com/o) https://example.com/o Ann (https://example.com/o) "
                           "https://example.com/o order (?order=A-1&x=1) top Ann () Ann Ann https://example.com/o\n")


def test_a_link_of_an_image_alone_gives_its_address_after_the_image_text_read_each_rendering_too() -> None:
    from mail_gateway.templating.html import html_to_text

    assert html_to_text("<p><a href='https://x.org/'><img alt='Logo'></a>") == "Logo https://x.org/\n"


def test_the_bench_template_text_is_made_once_and_a_template_with_its_own_text_has_none() -> None:
    from benchmarks.templates import HTML, TEXT
    from benchmarks.templates import VARIABLES as BENCH

    made = compile_template("receipt", 1, {"subject": "s", "html": HTML})
    assert made.text_made is not None
    assert_same_text(made, BENCH)
    assert compile_template("receipt", 1, {"subject": "s", "html": HTML, "text": TEXT}).text_made is None


@pytest.mark.parametrize("html", [
    "<pre>{{ name }}  x</pre>",  # a <pre>'s spaces are written otherwise
    "<pre>{% if flag %}x{% endif %}</pre>",
    "<p><a href=\"{{ url }}\">{% if flag %}x{% endif %}</a></p>",  # a link's text is read whole
    "<p><a href=\"x\"><span><a href=\"{{ url }}\">{{ name }}</a></span></a></p>",  # a link in a link
    "<p>&#123;{{ name }}</p>",  # the text would read as a tag
    "<ul>{% for item in items %}<li>{{ item.name }}{% endfor %}</ul>",  # a block the parser does not close
])
def test_a_template_whose_text_could_be_read_otherwise_is_read_at_each_rendering(html) -> None:
    template = compiled(html)
    assert template.text_made is None
    for variables in VARIABLES:
        assert_same_text(template, variables)


def test_whitespace_control_is_read_as_the_lexer_leaves_it() -> None:
    template = compiled("<p>a  {%- if flag -%}  b {{- name -}}  c{% endif %}</p><p>{{ name }} -}}</p>")
    assert template.text_made is not None
    for variables in VARIABLES:
        assert_same_text(template, variables)


@pytest.mark.parametrize("name", [
    " ", "\t\n",  # blank: the parser reads spaces apart where the words were not
    "x\x01y", "a\x0cb", "a\rb",  # read anew by the parser
    "\ue001x", "\ue004x\ue008",  # the marks of the text as made
])
def test_a_value_the_text_made_once_cannot_stand_for_is_read_from_the_html(name) -> None:
    template = compiled("<div><img alt=\"a\">{{ name }}<img alt=\"b\"></div><p>x{{ name }}y</p>"
                        "<p><a href=\"{{ name }}\">{{ name }}</a></p>")
    assert template.text_made is not None
    assert_same_text(template, {**VARIABLES[0], "name": name})


def test_markup_a_filter_writes_is_read_as_the_parser_reads_it() -> None:
    # "&amp;nbsp;" less "amp;" is a reference autoescaping never writes: the HTML is read (U+00A0, a space).
    template = compiled("<p>a{{ name|e|replace('amp;', '') }}b {{ name|e }}</p>")
    assert template.text_made is not None
    variables = {**VARIABLES[0], "name": "&nbsp;"}
    assert render_template(template, variables, LIMITS).text == text_read_each_rendering(template, variables)
    assert "a b &nbsp;" in render_template(template, variables, LIMITS).text


def test_the_text_of_a_template_that_draws_at_random_is_read_from_its_own_html() -> None:
    # Rendered apart, the HTML part and the text made from it would draw apart: seven times in eight here.
    from mail_gateway.templating.html import html_to_text

    template = compiled("<p>{{ ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']|random }} {{ items|map('random')|list }}</p>")
    assert template.inlined is None and template.text_made is None
    for _ in range(20):
        rendered = render_template(template, {**VARIABLES[0], "items": ["xyz", "uvw"]}, LIMITS)
        assert rendered.text == html_to_text(rendered.html)
