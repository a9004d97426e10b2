"""A template that only writes variables between its text is rendered by joining the two (``substitution``), and
gives what Jinja2 gives: the same text, the same escaping, the same output charged; anything else is Jinja2's."""

from __future__ import annotations

import pytest
from jinja2 import Template

from mail_gateway.errors import TemplateError
from mail_gateway.templating.limits import budget
from mail_gateway.templating.render import Limits, compile_template, render_template
from mail_gateway.templating.sandbox import HTML, PLAIN

SOURCES = [
    "Your order {{ order }} with {{ company }}",
    "{{ order }}",
    "Plain text, no names",
    "",
    "{{- order -}}   and   {{ company }}\n",  # whitespace control and the final newline, as the lexer leaves them
    "  {{ order }}{{ company }}{{ order }}\n\n",
    "<p class=\"x\">Hi {{ name }} &amp; <b>{{ order }}</b></p>",
    "{# a comment #}Hi {{ name }}{% raw %}{{ not a tag }}{% endraw %}",
]
VALUES = ["Ann", "<b>&'\"x\"</b>", "  spaced  out  ", "é 中 😀", "", "&amp;", 0, -12, 3.5, 1e16, True, False, None]


def jinja2_rendering(template: Template, variables: dict) -> tuple[str, int]:
    """What Jinja2 itself writes, past the substitution, and the output it charges."""
    with budget(1000, 1_000_000, 5.0) as given:
        return Template.render(template, variables), given.output


def substituted(template: Template, variables: dict) -> tuple[str, int]:
    with budget(1000, 1_000_000, 5.0) as given:
        return template.render(variables), given.output


@pytest.mark.parametrize("environment", [PLAIN, HTML], ids=["plain", "html"])
@pytest.mark.parametrize("source", SOURCES)
def test_a_substitution_writes_and_charges_what_jinja2_does(environment, source) -> None:
    template = environment.compile_guarded(source)
    assert template.substitution is not None, "rendered by Jinja2: this test would compare Jinja2 with itself"
    for value in VALUES:
        variables = {"order": value, "company": "Acme & Co", "name": value}
        assert substituted(template, variables) == jinja2_rendering(template, variables), value


@pytest.mark.parametrize("source", [
    "{% if x %}a{% endif %}", "{{ x|upper }}", "{{ x.y }}", "{{ x ~ 'a' }}", "{{ 'a' }}", "{{ self }}",
    "{% set y = 1 %}{{ y }}", "{% for i in x %}{{ i }}{% endfor %}",
])
def test_a_template_doing_more_than_writing_names_is_left_to_jinja2(source) -> None:
    assert PLAIN.compile_guarded(source).substitution is None


@pytest.mark.parametrize("variables", [
    {"company": "Acme"},  # order missing: Jinja2 names it and its line
    {"order": ["a", "b"], "company": "Acme"},  # a list: written as Jinja2 writes it
    {"order": {"a": 1}, "company": "Acme"},
    {"order": range, "company": "Acme"},  # what a library caller might give: refused as Jinja2 refuses it
])
def test_what_a_substitution_does_not_take_is_rendered_by_jinja2(variables) -> None:
    template = PLAIN.compile_guarded("Your order\n{{ order }} with {{ company }}")
    assert outcome(substituted, template, variables) == outcome(jinja2_rendering, template, variables)


def outcome(render, template: Template, variables: dict) -> object:
    try:
        return render(template, variables)
    except Exception as exc:  # noqa: BLE001 - the error, compared with Jinja2's own
        return type(exc), str(exc)


def test_a_variable_named_like_a_global_is_the_variable_and_a_global_alone_is_refused() -> None:
    compiled = compile_template("t", 1, {"subject": "{{ range }}", "text": "x", "html": None})
    limits = Limits(max_output=1000, max_steps=100)
    assert render_template(compiled, {"range": "R"}, limits).subject == "R"
    with pytest.raises(TemplateError, match="not a value"):
        render_template(compiled, {}, limits)


def test_the_output_limit_holds_across_parts_and_names_itself() -> None:
    compiled = compile_template("t", 1, {"subject": "{{ a }}", "text": "{{ a }}{{ a }}", "html": None})
    limits = Limits(max_output=25, max_steps=100)
    assert render_template(compiled, {"a": "x" * 8}, limits).text == "x" * 16  # 24 of 25
    with pytest.raises(TemplateError, match="GATEWAY_TEMPLATE_MAX_OUTPUT"):
        render_template(compiled, {"a": "x" * 9}, limits)  # 27


def test_the_parts_of_a_stored_template_of_names_alone_are_substitutions() -> None:
    compiled = compile_template("t", 1, {"subject": "Hi {{ name }}", "text": None,
                                         "html": "<style>p{color:red}</style><p>Hi {{ name }}</p>"})
    assert compiled.inlined is not None and compiled.text_made is not None
    for template in (compiled.parts["subject"], compiled.parts["html"], compiled.inlined, compiled.text_made):
        assert template.substitution is not None
    rendered = render_template(compiled, {"name": "<Ann>"}, Limits(max_output=10_000, max_steps=100))
    assert (rendered.subject, rendered.text) == ("Hi <Ann>", "Hi <Ann>\n")
    assert '<p style="color: red;">Hi &lt;Ann&gt;</p>' in (rendered.html or "")
