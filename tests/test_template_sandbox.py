"""The sandbox templates render in: a template that reaches for what it must not is refused, not executed; a
missing variable is an error, never an empty string; a rendering that would run too long or produce too much is
stopped, whichever construct it uses."""

from __future__ import annotations

import pytest
from api_helpers import assert_problem, fields, outbox
from cpu_limited import run_limited

from mail_gateway import create_app
from mail_gateway.errors import TemplateError
from mail_gateway.templating.render import Limits, compile_template, render_template

SEND = {"from": "app@example.com", "to": ["ann@example.com"], "template": "t"}


@pytest.fixture
def app(make_settings):
    return create_app(make_settings(mail_backend="memory", gateway_template_max_steps=2000,
                                    gateway_template_max_output=20_000))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner['__init__'] }}",
    "{{ namespace|attr('__init__') }}",
    "{% set x = lipsum.__globals__ %}{{ x }}",
])
def test_a_template_reaching_for_unsafe_attributes_is_refused_when_saved(client, source) -> None:
    problem = assert_problem(client.post("/v1/templates", json={
        "name": "t", "subject": "Hi", "text": "one\n" + source}), 422, "template-error")
    assert (problem["template"], problem["part"], problem["line"]) == ("t", "text", 2)
    assert fields(problem) == ["text"] and "may not" in problem["detail"]


@pytest.mark.parametrize(("source", "tag"), [("{% include 'footer' %}", "include"),
                                             ("{% extends 'base' %}", "extends"),
                                             ("{% import 'macros' as m %}", "import"),
                                             ("{% from 'macros' import button %}", "import")])
def test_a_template_using_another_is_refused_when_saved_naming_the_tag(client, source, tag) -> None:
    # There is no loader: each was saved, then every rendering failed with "it failed: TypeError: no loader for
    # this environment specified", which said neither what was wrong nor how to mend it.
    problem = assert_problem(client.post("/v1/templates", json={
        "name": "t", "subject": "Hi", "text": "one\n" + source}), 422, "template-error")
    assert (problem["template"], problem["part"], problem["line"]) == ("t", "text", 2)
    assert f"{{% {tag} %}}" in problem["detail"] and "a macro" in problem["detail"]


@pytest.mark.parametrize("name", ["__class__", "__init__", "__globals__"])
def test_an_unsafe_attribute_named_at_run_time_is_refused_not_executed(app, client, name) -> None:
    client.post("/v1/templates", json={"name": "t", "subject": "Hi", "text": "line\n{{ x|attr(n) }}"})
    problem = assert_problem(client.post("/v1/messages", json={**SEND, "variables": {"x": "", "n": name}}), 422,
                             "template-error")
    assert (problem["template"], problem["part"], problem["line"]) == ("t", "text", 2)
    assert outbox(app) == []


def test_format_strings_cannot_reach_attributes_either(client) -> None:
    client.post("/v1/templates", json={"name": "t", "subject": "Hi", "text": "{{ f.format(x) }}"})
    problem = assert_problem(client.post("/v1/messages", json={
        **SEND, "variables": {"f": "{0.__class__.__mro__}", "x": 1}}), 422, "template-error")
    assert problem["line"] == 1


def test_a_key_of_the_variables_may_start_with_an_underscore(app, client) -> None:
    client.post("/v1/templates", json={"name": "t", "subject": "Hi", "text": "{{ order._id }} {{ order['_id'] }}"})
    response = client.post("/v1/messages", json={**SEND, "variables": {"order": {"_id": "A-1"}}})
    assert response.status_code == 202, response.get_data(as_text=True)
    assert "A-1 A-1" in outbox(app)[0].data.decode()


def test_a_variable_inside_an_object_is_named_when_missing(client) -> None:
    client.post("/v1/templates", json={"name": "t", "subject": "Hi", "text": "{{ user.name }}"})
    problem = assert_problem(client.post("/v1/messages", json={**SEND, "variables": {"user": {"id": 1}}}), 422)
    assert problem["variable"] == "name" and fields(problem) == ["variables.user.name"]


def test_a_loop_inside_a_loop_is_stopped_after_the_allowed_steps(client) -> None:
    client.post("/v1/templates", json={"name": "t", "subject": "Hi", "text":
                                       "{% for i in range(100) %}\n{% for j in items %}{% endfor %}{% endfor %}"})
    problem = assert_problem(client.post("/v1/messages", json={**SEND, "variables": {"items": list(range(100))}}),
                             422, "template-error")
    assert "GATEWAY_TEMPLATE_MAX_STEPS" in problem["detail"] and problem["line"] == 2


@pytest.mark.parametrize("source", [
    "{{ 'x' * 30000 }}",
    "{{ 'x'.ljust(30000) }}",
    "{{ 'x'|center(30000) }}",
    "{{ ('x' * 200)|replace('x', 'y' * 200) }}",
    "{{ (['a' * 1000] * 30)|join }}",
    "{{ '%30000s' % 'x' }}",
    "{{ '{:>30000}'.format('x') }}",
    "{% set ns = namespace(s='x') %}{% for i in range(20) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{% set ns = namespace(s='x') %}{% for i in range(20) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "{% set ns = namespace(s='x') %}{% for i in range(20) %}{% set ns.s %}{{ ns.s }}{{ ns.s }}{% endset %}"
    "{% endfor %}",
    "{% macro m() %}{% for i in range(100) %}{{ 'x' * 1000 }}{% endfor %}{% endmacro %}{% set y = m() %}",
    "{% for i in range(1000) %}{{ 'x' * 100 }}{% endfor %}",
    "{{ 7 ** (7 ** 7) }}",
    "{% set ns = namespace(n=7) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}{% endfor %}",
])
def test_a_rendering_that_would_produce_too_much_is_stopped(client, source) -> None:
    saved = client.post("/v1/templates", json={"name": "t", "subject": "Hi", "text": source})
    assert saved.status_code == 201, saved.get_data(as_text=True)
    problem = assert_problem(client.post("/v1/messages", json={**SEND, "variables": {}}), 422, "template-error")
    assert problem["template"] == "t" and problem["part"] == "text"


def test_recursion_without_end_is_stopped(client) -> None:
    client.post("/v1/templates", json={"name": "t", "subject": "Hi",
                                       "text": "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}"})
    assert_problem(client.post("/v1/messages", json={**SEND, "variables": {}}), 422, "template-error")


def test_within_the_limits_loops_filters_and_macros_work(app, client) -> None:
    source = ("{% macro row(item) %}- {{ item.name|title }}: {{ '%.2f'|format(item.price) }}\n{% endmacro %}"
              "{% for item in items|sort(attribute='name') %}{{ row(item) }}{% endfor %}"
              "{{ items|map(attribute='name')|join(', ') }} {{ 'x' * 3 }} {{ 2 ** 10 }}")
    client.post("/v1/templates", json={"name": "t", "subject": "{{ items|length }} items", "text": source})
    items = [{"name": "pear", "price": 1.5}, {"name": "apple", "price": 0.25}]
    response = client.post("/v1/messages", json={**SEND, "variables": {"items": items}})
    assert response.status_code == 202, response.get_data(as_text=True)
    assert "- Apple: 0.25\n- Pear: 1.50\npear, apple xxx 1024" in outbox(app)[0].data.decode().replace("\r\n", "\n")


def test_a_rendering_that_takes_too_long_is_stopped_at_its_next_step() -> None:
    compiled = compile_template("t", None, {"subject": "Hi", "text": "{% for i in range(3) %}{{ i }}{% endfor %}"})
    assert render_template(compiled, {}, Limits(max_output=1000, max_steps=100, seconds=60)).text == "012"
    with pytest.raises(TemplateError, match="longer than") as caught:
        render_template(compiled, {}, Limits(max_output=1000, max_steps=100, seconds=0))
    assert caught.value.part == "text"


# -- what a hostile template could still do (each one went through before) -----------------------------------


def test_html_nested_deeper_than_css_inline_can_read_is_refused_not_a_crash(make_settings) -> None:
    # 20,000 nested elements overflowed css-inline's stack: the process ended (SIGSEGV), every request with it.
    client = create_app(make_settings(mail_backend="memory")).test_client()
    client.post("/v1/templates", json={"name": "t", "subject": "Hi",
                                       "html": "{% for i in range(20000) %}<div>{% endfor %}x"})
    problem = assert_problem(client.post("/v1/templates/t/render", json={}), 422, "template-error")
    assert fields(problem) == ["html"] and "nests elements more than 1000 deep" in problem["detail"]
    # Careless markup is not depth: thousands of unclosed paragraphs and list items render.
    client.put("/v1/templates/t", json={"subject": "Hi", "html": "<ul>" + "<li><p>item" * 3000 + "</ul>"})
    assert client.post("/v1/templates/t/render", json={}).status_code == 200


def test_html_whose_tags_never_end_is_read_for_its_depth_in_one_pass() -> None:
    # The depth count's pattern could split a tag's name and attributes many ways: "<a" written 1,001 times
    # without a ">" (2 KB of template) took half a minute of CPU to render, 2,000 times nearly five minutes, and
    # the rendering's 2 s clock never saw it. Larger ones are rendered here under a CPU limit of 20 s, which that
    # reading exceeds by hours and a linear one does not approach (a fraction of a second).
    run_limited(
        "for n, html in enumerate(('<a' * 20_000, '<a ' * 20_000, '<b x=1' * 20_000, '<i>' * 900 + '<a' * 9_000)):\n"
        "    client.post('/v1/templates', json={'name': f't{n}', 'subject': 'Hi', 'html': html})\n"
        "    answer = client.post(f'/v1/templates/t{n}/render', json={})\n"
        "    assert answer.status_code == 200, answer.get_json()\n")


@pytest.mark.parametrize("source", ["{{ f % v }}", "{{ f|format(**v) }}"])
def test_a_width_after_a_key_with_parentheses_is_checked_before_the_format_runs(client, source) -> None:
    # Python's keys nest parentheses: '%(a(b)c)30000s' has the key a(b)c and the width 30000. The check read the
    # key up to its first ')' and never saw the width, so the string was made in full and refused only when
    # written: '%(a(b)c)1500000000s' made 1.5 GB for one rendering.
    client.post("/v1/templates", json={"name": "t", "subject": "Hi", "text": source})
    problem = assert_problem(client.post("/v1/templates/t/render", json={
        "variables": {"f": "%(a(b)c)30000s", "v": {"a(b)c": 1}}}), 422, "template-error")
    assert "a %-format's width or precision would make a value of 30000 characters" in problem["detail"]


def test_a_percent_format_is_read_in_one_pass() -> None:
    # A key never closed made the check's pattern scan to the end from every '%(': 100 KB of them took 6 s of
    # CPU, a megabyte ten minutes, before the format was even tried (Python refuses it). A megabyte is rendered
    # here under a CPU limit of 20 s, which that reading exceeds many times over and a linear one does not
    # approach.
    run_limited(
        "client.post('/v1/templates', json={'name': 't', 'subject': 'Hi', 'text': '{{ f % v }}{{ f|format(v) }}'})\n"
        "for f in ('%(' * 500_000, '%(a' * 300_000):\n"
        "    answer = client.post('/v1/templates/t/render', json={'variables': {'f': f, 'v': {}}})\n"
        "    assert answer.status_code == 422 and 'incomplete format key' in answer.get_json()['detail']\n")


def test_an_internal_filter_named_as_a_string_is_refused(client) -> None:
    # map('gateway:charge', -N) gave the output budget back: the limit was off for the rest of the rendering.
    client.post("/v1/templates", json={"name": "t", "subject": "Hi", "text": (
        "{{ ['']|map('gateway:charge', -100000000)|join }}{% for i in range(100) %}{{ 'x' * 500 }}{% endfor %}")})
    problem = assert_problem(client.post("/v1/templates/t/render", json={}), 422, "template-error")
    assert "no filter is named 'gateway:charge'" in problem["detail"]


def test_filters_of_constants_run_when_rendered_within_the_budget_not_when_compiled(client) -> None:
    # Jinja2's optimizer ran them at compile time, outside every limit: doubled 40 times, never answered.
    source = "{{ '\\\\'" + "|tojson" * 40 + "|length }}"
    assert client.post("/v1/templates", json={"name": "t", "subject": "Hi", "text": source}).status_code == 201
    problem = assert_problem(client.post("/v1/templates/t/render", json={}), 422, "template-error")
    assert "the tojson filter" in problem["detail"]


@pytest.mark.parametrize("source", ["{{ " + "(" * 300 + "1" + ")" * 300 + " }}",
                                    "{% for i in [1] %}" * 25 + "x" + "{% endfor %}" * 25])
def test_a_template_nested_too_deeply_to_compile_is_a_problem_not_a_500(client, source) -> None:
    problem = assert_problem(client.post("/v1/templates", json={"name": "t", "subject": "Hi", "text": source}), 422,
                             "template-error")
    assert "nests too deeply to be compiled" in problem["detail"] and fields(problem) == ["text"]


@pytest.mark.parametrize(("source", "said"), [("{{ range }}", "writes a function"),
                                              ("{{ [1, 2]|map('string') }}", "writes a generator"),
                                              ("{{ 'a'.upper }}", "writes a builtin_function_or_method")])
def test_what_is_not_a_value_is_not_written_with_its_memory_address(client, source, said) -> None:
    client.post("/v1/templates", json={"name": "t", "subject": "Hi", "text": source})
    problem = assert_problem(client.post("/v1/templates/t/render", json={}), 422, "template-error")
    assert said in problem["detail"] and "0x" not in problem["detail"]


def test_a_part_longer_than_a_template_may_be_is_refused_when_saved(make_settings) -> None:
    client = create_app(make_settings(mail_backend="memory")).test_client()
    problem = assert_problem(client.post("/v1/templates", json={"name": "t", "subject": "Hi",
                                                                "text": "{{ a }}" * 20_000}), 422, "template-error")
    assert "131072 characters" in problem["detail"] and fields(problem) == ["text"]


@pytest.mark.parametrize(("source", "said"), [
    ("{{ ([{'a': 'x'}] * 100)|join('y' * 1000, attribute='a')|length }}", "the join filter"),
    ("{% set big = 'x' * 5000 %}{{ ('%s' * 100 % ((big,) * 100))|length }}", "a %-format"),
    ("{% set big = 'x' * 5000 %}{{ ('{0}' * 100).format(big)|length }}", "str.format"),
    ("{{ '\\\\'" + "|pprint" * 30 + "|length }}", "the pprint filter"),
    ("{{ ('www.a.com ' * 100)|urlize(target='y' * 1000)|length }}", "the urlize filter"),
    ("{{ 'x'.encode().ljust(100000000)|length }}", "str.encode is not available"),
    ("{{ (1).to_bytes(100000000, 'big')|length }}", "int.to_bytes is not available"),
])
def test_what_would_make_more_than_the_output_allows_is_stopped_before_it_is_made(client, source, said) -> None:
    # Each made far more than GATEWAY_TEMPLATE_MAX_OUTPUT and answered 200 (or took gigabytes).
    client.post("/v1/templates", json={"name": "t", "subject": "Hi", "text": source})
    problem = assert_problem(client.post("/v1/templates/t/render", json={}), 422, "template-error")
    assert said in problem["detail"]


# -- values made of references: [a, a] costs two references, walking it costs all of a twice --------------------

DOUBLED = "{% set a = [1] %}" + "{% set a = [a, a] %}" * 60 + "{% set b = [1] %}" + "{% set b = [b, b] %}" * 60


@pytest.mark.parametrize(("source", "said"), [
    (DOUBLED + "{{ a == b }}", "a list it writes"),
    (DOUBLED + "{{ a|string|length }}", "a list it writes"),
    (DOUBLED + "{{ a }}", "a list it writes"),
    (DOUBLED + "{{ a|tojson|length }}", "a list it writes"),
    (DOUBLED + "{{ [a, b]|sort|length }}", "a list it writes"),
    ("{% set a = (1,) %}" + "{% set a = (a, a) %}" * 60 + "{{ {a: 1}|length }}", "a tuple it writes"),
    ("{% set a = {} %}" + "{% set a = {'k': a, 'l': a} %}" * 60 + "{{ a|string|length }}", "a dict it writes"),
    ("{% set a = ['x' * 1000] %}" + "{% set a = [a, a] %}" * 30 + "{{ a|string|length }}", "a list it writes"),
    ("{% set a = [1] %}" + "{% set a = [a] * 2 %}" * 60 + "{{ a|string|length }}", "'*'"),
    ("{% set a = [1] %}" + "{% set a = [a] + [a] %}" * 60 + "{{ a|string|length }}", "'+'"),
    ("{% set a = [1] %}" + "{% set a = dict(k=a, l=a) %}" * 60 + "{{ a|string|length }}", "calling dict"),
    ("{% set a = [1] %}" + "{% set a = cycler(a, a).items %}" * 60 + "{{ a|string|length }}", "calling Cycler"),
    ("{% macro m(n) %}{% if n %}{{ m(n - 1, varargs, varargs) }}{% else %}{{ varargs|string|length }}{% endif %}"
     "{% endmacro %}{{ m(60) }}", "calling m"),
    ("{% set big = 'x' * 10000 %}{{ range(1000)|map(attribute='x', default=big)|list|string|length }}",
     "the map filter"),
    ("{{ range(1000)|map('center', 10000)|list|length }}", "the map filter"),
    ("{% set big = 'x' * 10000 %}{% for b in [1]|batch(1000, fill_with=big) %}{{ b|string|length }}{% endfor %}",
     "the batch filter"),
    ("{% set big = 'x' * 10000 %}{{ {}.fromkeys(range(1000), big)|string|length }}", "calling fromkeys"),
    ("{% set n = 7 ** 4600 %}{{ ([n] * 1000)|string|length }}", "'*'"),
])
def test_a_value_holding_more_than_the_output_allows_is_refused_as_it_is_made(client, source, said) -> None:
    # Each was a few references that comparing, hashing or writing walked in full: 2**60 items never answered, the
    # others took gigabytes or answered with far more than GATEWAY_TEMPLATE_MAX_OUTPUT behind them.
    client.post("/v1/templates", json={"name": "t", "subject": "Hi", "text": "one\n" + source})
    problem = assert_problem(client.post("/v1/templates/t/render", json={}), 422, "template-error")
    assert said in problem["detail"] and "GATEWAY_TEMPLATE_MAX_OUTPUT" in problem["detail"]
    assert (problem["part"], problem["line"]) == ("text", 2)


def test_a_namespace_is_written_without_what_it_holds(client) -> None:
    # A list took it small, then it grew: writing the list wrote the namespace's text a thousand times over.
    client.post("/v1/templates", json={"name": "t", "subject": "Hi", "text": (
        "{% set ns = namespace(a=1) %}{% set l = [ns] * 1000 %}{% set ns.a = 'x' * 10000 %}"
        "{{ l|string|length }} {{ ns|string }}")})
    response = client.post("/v1/templates/t/render", json={})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["text"] == "13000 <Namespace>"


@pytest.mark.parametrize("source", ["{% if a == b %}x{% endif %}", "{% if a is eq b %}x{% endif %}",
                                    "{% if a == b == a %}x{% endif %}"])
def test_the_clock_is_looked_at_after_each_comparison(source) -> None:
    # A comparison walks both values in C and is no step: thousands of them written one after another (no loop)
    # ran for minutes past the 2 s.
    nested: list = [1]
    for _ in range(10):
        nested = [nested, [nested]]
    compiled = compile_template("t", None, {"subject": "Hi", "text": source})
    with pytest.raises(TemplateError, match="longer than"):
        render_template(compiled, {"a": nested, "b": nested}, Limits(max_output=1000, max_steps=100, seconds=0))


def test_lists_tuples_and_dicts_written_in_a_template_still_render(client) -> None:
    client.post("/v1/templates", json={"name": "t", "subject": "Hi", "text": (
        "{% set order = {'lines': [['pear', 2], ['apple', 3]], 'tags': ('new', 'gift')} %}"
        "{% for name, n in order.lines %}{{ name }}={{ n }} {% endfor %}{{ order.tags|join('/') }} "
        "{{ [order, order]|length }} {{ order.lines[1] }} {{ {'a': [1, 2]} == {'a': [1, 2]} }} "
        "{% set ns = namespace(items=[]) %}{% for i in range(300) %}{% set ns.items = ns.items + [i] %}{% endfor %}"
        "{{ ns.items|sum }} {{ (ns.items * 3)|length }} {{ ns.items|batch(100)|list|length }}")})
    response = client.post("/v1/templates/t/render", json={})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["text"] == "pear=2 apple=3 new/gift 2 ['apple', 3] True 44850 900 3"
