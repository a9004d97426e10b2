"""The environment templates are compiled and rendered in: Jinja2's immutable sandbox (no attribute that starts
with ``_``, no method that changes a list or a dict, ``str.format`` checked like attribute access; Jinja2 3.1.6 or
later, which closed the escapes through ``str.format`` and ``|attr``, CVE-2024-56326 and CVE-2025-27516), with
``StrictUndefined`` (a missing variable is an error, never an empty string), and the limits of ``limits``.

A template is parsed, checked and rewritten before it is compiled: an attribute or item it may not use, written
in its text, refuses it at once (naming its line) rather than when a rendering reaches it; every ``{% for %}``
iterates through the loop guard, every ``{{ expression }}`` and every piece of literal text of an output is
charged to the output budget, ``~`` is measured before it joins, and every list, tuple and dict written is weighed
as it is made (``filters``, ``weight``), as are what ``+``, ``*``, calls and filters make. What the rewriting
cannot see — an attribute named by a variable, a format string given as one — the sandbox refuses when the
rendering gets there.
"""

from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined, Template, nodes
from jinja2.runtime import Context, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer

from mail_gateway.errors import TemplateError
from mail_gateway.templating import filters
from mail_gateway.templating.limits import check_binop, check_method, current
from mail_gateway.templating.substitution import Check, Substitution, substitution
from mail_gateway.templating.weight import SCALARS

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

    # Jinja2 compiles a list, tuple or dict straight into Python's, which no hook of the sandbox sees.
    def visit_List(self, node: nodes.List) -> nodes.Node:
        return _filter(self.generic_visit(node), filters.BUILD)

    visit_Dict = visit_List

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        node = self.generic_visit(node)
        return _filter(node, filters.BUILD) if node.ctx == "load" else node  # not {% set a, b = ... %}'s names

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        node = self.generic_visit(node)
        for operand in node.ops[1:]:  # a < b < c: each operand after the first is read after a comparison
            operand.expr = _filter(operand.expr, filters.TICK)
        return _filter(node, filters.TICK)


class _Namespace(Namespace):
    """``namespace()`` written without what it holds: a namespace changes after a list took it
    (``[ns] * 100000``, then ``{% set ns.text = long %}``), so no weight taken before would hold for its text."""

    def __repr__(self) -> str:
        return "<Namespace>"


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


def _no_other_templates(tree: nodes.Template) -> None:
    """``{% include %}``, ``{% import %}`` and ``{% extends %}``: a template stands alone (there is no loader), and
    each failed only when rendered, as Jinja2's "no loader for this environment specified"."""
    for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        tag = {nodes.Include: "include", nodes.Extends: "extends"}.get(type(node), "import")
        raise TemplateError(f"it uses {{% {tag} %}}; a template cannot use another, so write what it would bring in "
                            "this template itself (a macro for what repeats)", line=node.lineno)


class GuardedTemplate(Template):
    """A compiled template that renders by joining its text and variables where that is all it does
    (``substitution``), and by Jinja2 otherwise."""

    substitution: Substitution | None = None

    def render(self, *args: Any, **kwargs: Any) -> str:
        if self.substitution is not None and len(args) == 1 and not kwargs and isinstance(args[0], dict):
            written = self.substitution.render(args[0])
            if written is not None:
                return written
        return super().render(*args, **kwargs)


class GuardedEnvironment(ImmutableSandboxedEnvironment):
    # The operators that can make a value much larger than their operands go through call_binop, and '-' with
    # them, which takes sets (dict views) apart in time of their size: each is followed by a look at the clock.
    intercepted_binops = frozenset({"*", "**", "+", "%", "-"})

    def __init__(self, *, autoescape: bool) -> None:
        # optimized=False: Jinja2's optimizer runs filters of constants while compiling, outside every budget
        # ('x'|tojson|tojson... doubled for each one, gigabytes before the template was even saved).
        super().__init__(undefined=StrictUndefined, autoescape=autoescape, auto_reload=False, cache_size=0,
                         optimized=False)
        for name in REMOVED_GLOBALS:
            self.globals.pop(name, None)
        self.globals["namespace"] = _Namespace
        self.filters = filters.guarded_filters(self.filters)
        self.tests = filters.guarded_tests(self.tests)
        self.template_class = GuardedTemplate
        # Filters that pass a value on unchanged or raise, which a substitution may apply itself (``pretext``).
        self.value_checks: dict[str, Check] = {}

    def call_filter(self, name: str, value: Any, args: Any = None, kwargs: Any = None, context: Any = None,
                    eval_ctx: Any = None) -> Any:
        # A filter named by a string the template writes (map('...'), select('...')): never an internal one,
        # which would let a template charge its own output budget back down.
        if ":" in str(name):
            raise TemplateError(f"no filter is named {name!r}")
        return super().call_filter(name, value, args, kwargs, context, eval_ctx)

    def getitem(self, obj: Any, argument: Any) -> Any:
        value = super().getitem(obj, argument)
        if isinstance(argument, tuple | slice):  # a tuple is hashed in full to be looked up, a slice copies
            current().tick()
        return value

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        check_binop(operator, left, right)
        budget = current()
        weight = budget.weights.combined(operator, left, right)  # before the list is made
        result = super().call_binop(context, operator, left, right)
        budget.tick()
        if weight is None:
            return budget.weights.guarded(result, f"'{operator}'")
        budget.weights.remember(result, weight)
        return result

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.step()
        args = check_method(__obj, args, kwargs)
        if isinstance(__obj, Macro) and (__obj.catch_varargs or __obj.catch_kwargs):
            # Its varargs and kwargs are a tuple and a dict of what it was given: m(varargs, varargs) doubles.
            budget.weights.weigh((args, kwargs), f"calling {__obj.name}")
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, SCALARS):  # what macros return: nothing to weigh
            return result
        # dict(a=x, b=x), {}.fromkeys(keys, x), cycler(x, x).items: made of what they were given, repeated.
        return budget.weights.guarded(result, f"calling {getattr(__obj, '__name__', 'a function')}")

    def compile_checked(self, source: str) -> tuple[Template, nodes.Template]:
        """The compiled template and its parsed tree (for naming a missing variable later); ``TemplateError``
        (with its line) for an attribute it may not use; ``TemplateSyntaxError`` as Jinja2 raises it."""
        tree = self.parse(source)
        _unsafe_names(tree)
        _no_other_templates(tree)
        return self.compile_guarded(source), tree

    def compile_guarded(self, source: str) -> Template:
        """The template compiled with its guards, its names unchecked: for a source made from a checked one, with
        the same tags (``preinline``)."""
        tree = self.parse(source)
        plan = substitution(tree, bool(self.autoescape), self.value_checks)  # before the guards rewrite the tree
        template = self.from_string(_Guards().visit(tree))
        assert isinstance(template, GuardedTemplate)
        template.substitution = plan
        return template


HTML = GuardedEnvironment(autoescape=True)
PLAIN = GuardedEnvironment(autoescape=False)  # the subject and the text part: nothing is escaped there
