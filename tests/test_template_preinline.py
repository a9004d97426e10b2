"""A template's CSS inlined once, when it is compiled: every rendering gives what inlining that rendering gives
(compared after one more pass of the inliner, which writes both the same way), and a template whose rendering
could differ is inlined at each rendering, as before."""

from __future__ import annotations

import dataclasses
import random

import pytest
from markupsafe import Markup

from mail_gateway.errors import TemplateError
from mail_gateway.templating.html import inline_css
from mail_gateway.templating.preinline import compile_inlined
from mail_gateway.templating.render import Limits, compile_template, render_template
from mail_gateway.templating.sandbox import HTML

LIMITS = Limits(max_output=1_000_000, max_steps=100_000)
HOSTILE = "Ann <b class=\"a\">&amp; 'O'Neil\u00a0Ünïcode</b> {{ x }} <!-- -->"
ITEMS = [{"name": "pear", "price": "1.50"}, {"name": HOSTILE, "price": "0.25"}, {"name": "", "price": ""}]
HEAD = ("<html><head><title>{{ title }}</title><style>body{margin:0} p{color:#222;font-size:15px} .a{color:red} "
        "div p{line-height:1.5} .b > p{margin:0 !important} td{padding:4px} table.t td{border:1px solid #eee} "
        "ul li{margin:0 0 4px} #main{width:600px} h1{font-size:22px} .a .b{color:blue} "
        "a{text-decoration:none} @media (max-width:480px){ #main{width:100%}}</style></head><body>")
HANDLED = [
    "<div id=\"main\"><h1>Thank you, {{ name }}!</h1><p class=\"a\">Order <b>{{ order }}</b> &amp; more&nbsp;"
    "</p><p><a class=\"a\" href=\"{{ url }}\" title=\"{{ name }}\">See it</a> <img alt=\"{{ name }}\" src=\"x.png\">"
    "</p><!-- for {{ name }} --></div>",
    "<table class=\"t\"><tr>{% for item in items %}<td class=\"a\">{{ item.name }}</td>{% endfor %}</tr></table>",
    "<table class=\"t\">{% for item in items %}<tbody><tr><td>{{ item.name }}</td><td>{{ item.price }}</td></tr>"
    "</tbody>{% else %}<tbody><tr><td>none</td></tr></tbody>{% endfor %}</table>",
    "<ul>{% for item in items %}<li class=\"b\"><p>{{ loop.index }}. {{ item.name|upper }}</p></li>{% endfor %}</ul>",
    "<div class=\"a\">{% if flag %}<div class=\"b\"><p>{{ name }}</p></div>{% elif items %}<p>{{ items|length }}</p>"
    "{% else %}<p class=\"a\">none</p>{% endif %}</div>",
    "{% set greeting = 'Hello ' ~ name %}<div class=\"b\">\n  {%- for item in items %}\n    {% if item.name %}"
    "<p style=\"color:green\">{{ greeting }}: {{ item.name }}</p>{% endif %}\n  {%- endfor %}\n</div>",
]
REFUSED = {
    "a tag in a class": "<p class=\"{{ name }}\">x</p>",
    "a tag in a style": "<p style=\"color: {{ name }}\">x</p>",
    "a tag in an id": "<div id=\"{{ order }}\"><p>x</p></div>",
    "a statement in an attribute": "<a href=\"{% if flag %}a{% else %}b{% endif %}\">x</a>",
    "a tag that is an attribute": "<p {% if flag %}class=\"a\"{% endif %}>x</p>",
    "an element opened in a branch": "{% if flag %}<div class=\"a\">{% else %}<div class=\"b\">{% endif %}"
                                     "<p>x</p></div>",
    "rows the parser moves into a tbody": "<table>{% for item in items %}<tr><td>{{ item.name }}</td></tr>{% endfor %}"
                                          "</table>",
    "a block the parser splits": "<p>{% if flag %}<div>x</div>{% endif %}</p>",
    "markup made safe": "<div>{{ name|safe }}</div>",
    "markup from urlize": "<div>{{ url|urlize }}</div>",
    "markup by a filter's name": "<div>{{ items|map(attribute='name')|map('safe')|join }}</div>",
    "a macro": "{% macro m() %}<p>x</p>{% endmacro %}<div>{{ m() }}</div>",
    "a raw block": "<div>{% raw %}{{ x }}{% endraw %}</div>",
    "a style in a block": "{% if flag %}<style>p{color:blue}</style>{% endif %}<p>x</p>",
    "a tag after what may begin a reference": "<a href=\"?a=1&amp{{ url }}\">x</a><p>&#{{ order }}</p>",
}
BARE = {"a tag outside the body": "<html><head>{{ name }}<style>p{color:red}</style></head><body><p>x</p></body>"}


def compiled(html: str, head: str = HEAD):
    return compile_template("t", 1, {"subject": "Hi {{ name }}", "html": head + html})


def as_rendered_then_inlined(template, variables):
    return render_template(dataclasses.replace(template, inlined=None), variables, LIMITS)


def outcome(render, template, variables):
    try:
        return render(template, variables, LIMITS)
    except TemplateError as exc:
        return str(exc)


def assert_same(template, variables) -> None:
    once = outcome(render_template, template, variables)
    each = outcome(lambda t, v, _: as_rendered_then_inlined(t, v), template, variables)
    if isinstance(each, str):
        assert once == each
        return
    assert inline_css(once.html) == inline_css(each.html)
    assert (once.subject, once.text) == (each.subject, each.text)


VARIABLES = [
    {"title": "Receipt", "name": "Ann", "order": "A-1", "url": "https://example.com/o?a=1&b=2", "items": ITEMS,
     "flag": True},
    {"title": HOSTILE, "name": HOSTILE, "order": "", "url": "javascript:\"'<>", "items": [], "flag": False},
    {"title": "", "name": "", "order": "0", "url": "", "items": ITEMS[:1], "flag": False},
    # what a rule matches: a class, an id, a link
    {"title": "a", "name": "a", "order": "main", "url": "https://example.com/b", "flag": True,
     "items": [{"name": "https://example.com/a", "price": "a"}, {"name": "b", "price": "b"}]},
    # what ends a character reference written before a tag
    {"title": "t", "name": "n", "order": "65;", "url": "/b", "items": [], "flag": False},
]


@pytest.mark.parametrize("html", HANDLED)
def test_a_template_inlined_once_renders_what_inlining_each_rendering_gives(html) -> None:
    template = compiled(html)
    assert template.inlined is not None
    for variables in VARIABLES:
        assert_same(template, variables)


def test_the_inlined_template_has_the_styles_written_in_and_its_tags_where_they_were() -> None:
    html = render_template(compiled(HANDLED[0]), VARIABLES[0], LIMITS).html
    assert '<p class="a" style="' in html and "color: red;" in html and "<title>Receipt</title>" in html
    assert 'href="https://example.com/o?a=1&amp;b=2"' in html and "<!-- for Ann -->" in html
    assert "@media (max-width:480px)" in html


@pytest.mark.parametrize("html", [*REFUSED.values(), *BARE.values()], ids=[*REFUSED, *BARE])
def test_a_template_whose_renderings_could_be_styled_otherwise_is_inlined_at_each_rendering(html) -> None:
    template = compiled(html, "" if html in BARE.values() else HEAD)
    assert template.inlined is None
    for variables in VARIABLES:
        assert_same(template, variables)


@pytest.mark.parametrize("css", ["li:first-child{color:red}", "li + li{color:red}", "li ~ li{color:red}",
                                 "a[href^=b]{color:red}", "li\\:x{color:red}"])
def test_a_rule_that_looks_at_siblings_or_at_attributes_written_by_a_tag_keeps_inlining_at_each_rendering(css) -> None:
    head = f"<html><head><style>{css}</style></head><body>"
    template = compiled("<ul>{% for i in items %}<li><p><a href=\"{{ i.name }}\">x</a></p></li>{% endfor %}</ul>",
                        head)
    assert template.inlined is None
    assert_same(template, VARIABLES[3])


def test_text_the_inliner_would_write_as_a_tag_keeps_inlining_at_each_rendering() -> None:
    template = compiled("<p>&#123;&#123; name }}</p>", head="<style>p{color:red}</style>")  # decoded to "{{"
    assert template.inlined is None
    assert_same(template, VARIABLES[0])


def test_variables_other_than_json_are_rendered_then_inlined() -> None:
    # An object's attribute, or a value given through the library, may be Markup: its elements are styled too.
    template = compiled("<div>{{ name }}</div>")
    assert template.inlined is not None
    rendered = render_template(template, {**VARIABLES[0], "name": Markup('<p class="a">x</p>')}, LIMITS)
    assert '<p class="a" style="' in rendered.html and "color: red;" in rendered.html


def test_a_carriage_return_is_read_as_inlining_each_rendering_reads_it() -> None:
    template = compiled("<div><p>{{ name }}</p></div>")
    rendered = render_template(template, {**VARIABLES[0], "name": "one\r\ntwo"}, LIMITS)
    assert "\r" not in rendered.html and "one\ntwo" in rendered.html


def test_a_missing_variable_is_named_on_its_line_as_written() -> None:
    template = compile_template("t", 1, {"subject": "Hi", "html": "<html><head><style>\np{color:red}\n.a{margin:0}\n"
                                                                  "</style></head>\n<body>\n<p>{{ missing }}</p>"})
    assert template.inlined is not None
    with pytest.raises(TemplateError) as caught:
        render_template(template, {}, LIMITS)
    assert (caught.value.part, caught.value.line, caught.value.variable) == ("html", 6, "missing")


def test_the_templates_extra_missing_leaves_inlining_to_each_rendering(monkeypatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "mail_gateway.templating.html", None)
    source = HEAD + "<p>{{ name }}</p>"
    assert compile_inlined(source, HTML.parse(source)) is None


# -- templates made at random from the shapes above: the same for every one inlined once ---------------------

SELECTORS = ["p", ".a", "div p", ".b > p", "td", "table.t td", "ul li", "#main", "h1", ".a .b", "div > .a", "b",
             "tbody td", "li p"]
LEAVES = ["<p class=\"a\">{{ name }}</p>", "<p>x <b>{{ order }}</b></p>", "<h1 class=\"b\">t</h1>", "text {{ name }} ",
          "<a href=\"{{ url }}\" class=\"a\">l</a>", "<img alt=\"{{ name }}\" src=\"i.png\">", "<br>"]


def _random_markup(rng: random.Random, depth: int) -> str:
    if depth == 0:
        return rng.choice(LEAVES)
    inner = "".join(_random_markup(rng, depth - 1) for _ in range(rng.randint(1, 3)))
    return rng.choice([
        f"<div class=\"{rng.choice(['a', 'b', 'a b'])}\">{inner}</div>",
        f"{{% if flag %}}{inner}{{% else %}}{_random_markup(rng, depth - 1)}{{% endif %}}",
        f"{{% for item in items %}}<div class=\"b\">{inner}{{{{ item.name }}}}</div>{{% endfor %}}",
        f"<ul>{{% for item in items %}}<li>{inner}</li>{{% endfor %}}</ul>",
        f"<table class=\"t\"><tr>{{% for item in items %}}<td>{inner}</td>{{% endfor %}}</tr></table>",
        f"<div id=\"main\">{inner}</div>",
    ])


def test_templates_made_at_random_render_the_same_inlined_once_or_at_each_rendering() -> None:
    rng = random.Random(20261206)
    handled = 0
    for _ in range(60):
        rules = " ".join(f"{s}{{color:#{rng.randrange(4096):03x};margin:{rng.randrange(9)}px}}"
                         for s in rng.sample(SELECTORS, 5))
        template = compiled(_random_markup(rng, 3), f"<html><head><style>{rules}</style></head><body>")
        handled += template.inlined is not None
        for variables in VARIABLES:
            assert_same(template, variables)
    assert handled >= 40  # the shapes are ones inlining once can handle: most are
