"""The environment templates are compiled and rendered in: Jinja2's immutable sandbox (no attribute that starts
with ``_``, no method that changes a list or a dict, ``str.format`` checked like attribute access; Jinja2 3.1.6 or
later, which closed the escapes through ``str.format`` and ``|attr``, CVE-2024-56326 and CVE-2025-27516), with
``StrictUndefined`` (a missing variable is an error, never an empty string), and the limits of ``limits``.

A template is parsed, checked and rewritten before it is compiled: an attribute or item it may not use, written
in its text, refuses it at once (naming its line) rather than when a rendering reaches it; every ``{% for %}``
iterates through the loop guard, every ``{{ expression }}`` and every piece of literal text of an output is
charged to the output budget, and ``~`` is measured before it joins (``filters``). What the rewriting cannot see
— an attribute named by a variable, a format string given as one — the sandbox refuses when the rendering gets
there.
"""

from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined, Template, nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from mail_gateway.errors import TemplateError
from mail_gateway.templating import filters
from mail_gateway.templating.limits import check_binop, check_method, current

# Globals a template could make too much with and does not need: lipsum(n=...) writes any amount of text.
REMOVED_GLOBALS = ("lipsum",)


def _filter(node: nodes.Expr, name: str, *args: nodes.Expr) -> nodes.Filter:
    return nodes.Filter(node, name, list(args), [], None, None, lineno=node.lineno)


class _Guards(NodeTransformer):
    """Rewrites a parsed template so that its loops, its output and its ``~`` run through the guards."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node = self.generic_visit(node)
        node.iter = _filter(node.iter, filters.LOOP)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        node = self.generic_visit(node)
        literal = sum(len(child.data) for child in node.nodes if isinstance(child, nodes.TemplateData))
        guarded: list[nodes.Expr] = [child if isinstance(child, nodes.TemplateData) else _filter(child, filters.OUTPUT)
                                     for child in node.nodes]
        if literal:
            guarded.insert(0, _filter(nodes.Const("", lineno=node.lineno), filters.CHARGE,
                                      nodes.Const(literal, lineno=node.lineno)))
        node.nodes = guarded
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        node = self.generic_visit(node)
        return _filter(nodes.List(node.nodes, lineno=node.lineno), filters.CONCAT)


def _unsafe_names(tree: nodes.Template) -> None:
    """A name starting with ``__`` written in the template (``''.__class__``, ``x['__init__']``,
    ``x|attr('__globals__')``): the way out of every sandbox escape, refused here before anything runs. (A single
    ``_`` is a JSON key as often, ``order._id``; the sandbox refuses it at run time where it is a Python
    attribute.)"""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        name: Any = None
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args \
                and isinstance(node.args[0], nodes.Const):
            name = node.args[0].value
        if isinstance(name, str) and name.startswith("__"):
            raise TemplateError(f"it uses {name!r}; templates may not use attributes that start with '__'",
                                line=node.lineno)


class GuardedEnvironment(ImmutableSandboxedEnvironment):
    # The operators that can make a value much larger than their operands go through call_binop.
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, *, autoescape: bool) -> None:
        # optimized=False: Jinja2's optimizer runs filters of constants while compiling, outside every budget
        # ('x'|tojson|tojson... doubled for each one, gigabytes before the template was even saved).
        super().__init__(undefined=StrictUndefined, autoescape=autoescape, auto_reload=False, cache_size=0,
                         optimized=False)
        for name in REMOVED_GLOBALS:
            self.globals.pop(name, None)
        self.filters = filters.guarded_filters(self.filters)

    def call_filter(self, name: str, value: Any, args: Any = None, kwargs: Any = None, context: Any = None,
                    eval_ctx: Any = None) -> Any:
        # A filter named by a string the template writes (map('...'), select('...')): never an internal one,
        # which would let a template charge its own output budget back down.
        if ":" in str(name):
            raise TemplateError(f"no filter is named {name!r}")
        return super().call_filter(name, value, args, kwargs, context, eval_ctx)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        current().step()
        args = check_method(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def compile_checked(self, source: str) -> tuple[Template, nodes.Template]:
        """The compiled template and its parsed tree (for naming a missing variable later); ``TemplateError``
        (with its line) for an attribute it may not use; ``TemplateSyntaxError`` as Jinja2 raises it."""
        tree = self.parse(source)
        _unsafe_names(tree)
        guarded = _Guards().visit(self.parse(source))
        return self.from_string(guarded), tree


HTML = GuardedEnvironment(autoescape=True)
PLAIN = GuardedEnvironment(autoescape=False)  # the subject and the text part: nothing is escaped there
