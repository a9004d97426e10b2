"""The filters templates get: Jinja2's own, each that can make a value much larger than its input checked before
it runs and each one's result weighed (``weight``: a list or dict it returns, the items of an iterator as they
come), and the gateway's internal ones that the sandbox puts into every compiled template (``sandbox``): the
loop guard, the output charge, the checked ``~`` and the weighing of every list, tuple and dict written.

The internal filters' names hold a ``:``, which a template cannot write as a filter, and the environment refuses
such a name given as a string (``map('...')``), so a template cannot call them itself.
Each takes the context, which keeps Jinja2 from running it once at compile time in place of every rendering.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import Undefined, pass_context
from jinja2.runtime import Context, markup_join, str_join

from mail_gateway.errors import TemplateError
from mail_gateway.templating.limits import check_printf, current, joined_size, replaced_size

LOOP, OUTPUT, CHARGE, CONCAT, BUILD, TICK = ("gateway:loop", "gateway:output", "gateway:charge", "gateway:concat",
                                            "gateway:build", "gateway:tick")
MAX_JSON_INDENT = 16


@pass_context
def loop_guard(context: Context, iterable: Iterable[Any]) -> Iterator[Any]:
    """Wraps what every ``{% for %}`` iterates over: each iteration is a step."""
    budget = current()
    for item in iterable:
        budget.step()
        yield item


# What an expression may write: values. A function, method, class or generator would write its repr, with a
# memory address and an internal name, and is always a mistake in a template.
WRITABLE = (str, int, float, list, tuple, dict, type(None))


@pass_context
def output_guard(context: Context, value: Any) -> Any:
    """Wraps every ``{{ expression }}``: what it writes is charged before it is written."""
    if not isinstance(value, WRITABLE) and not isinstance(value, Undefined):  # Undefined: its own error, below
        raise TemplateError(f"it writes a {type(value).__name__}, which is not a value; call it, or end it with "
                            "|list or |join")
    budget = current()
    budget.charge(len(value) if isinstance(value, str) else len(str(value)))
    budget.tick()
    return value


@pass_context
def charge(context: Context, value: str, size: int) -> str:
    """Charges the literal text of an output node (``size`` characters), each time it is written."""
    current().charge(size)
    return value


@pass_context
def concat_guard(context: Context, parts: list[Any]) -> str:
    """``a ~ b``: measured before it is joined."""
    budget = current()
    budget.fits(joined_size(parts, ""), "'~'")
    budget.tick()
    return markup_join(parts) if context.eval_ctx.autoescape else str_join(parts)


@pass_context
def build(context: Context, value: list[Any] | tuple[Any, ...] | dict[Any, Any]) -> Any:
    """Wraps every list, tuple and dict written in a template: ``[a, a]`` is two references to ``a`` but twice its
    weight, so it is weighed as it is made."""
    budget = current()
    budget.weights.weigh(value, f"a {type(value).__name__} it writes")
    budget.tick()  # a dict's tuple keys were hashed, in full, as it was made
    return value


@pass_context
def tick(context: Context, value: Any) -> Any:
    """Wraps every comparison: C code compares nested values in full, and no step counts it."""
    current().tick()
    return value


def _width(name: str, keyword: str) -> Callable[..., None]:
    """A filter whose second argument (``keyword``) says how many characters or items it makes."""

    def check(*args: Any, **kwargs: Any) -> None:
        number = args[1] if len(args) > 1 else kwargs.get(keyword, 0)
        if isinstance(number, int):
            current().fits(number, f"the {name} filter")
    return check


def _indent(text: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    text = str(text)
    current().fits(len(text) + (text.count("\n") + 1) * (width if isinstance(width, int) else len(str(width))),
                   "the indent filter")


def _replace(text: Any, old: Any, new: Any, count: int | None = None) -> None:
    current().fits(replaced_size(str(text), str(old), str(new), -1 if count is None else count), "the replace filter")


def _wordwrap(text: Any, width: int = 79, break_long_words: bool = True, wrapstring: str | None = None,
              *_: Any, **__: Any) -> None:
    text = str(text)
    current().fits(len(text) + (len(text) // max(width, 1) + 1) * len(wrapstring or "\n"), "the wordwrap filter")


def _sum(iterable: Any, attribute: Any = None, start: Any = 0) -> None:
    # Adding up lists or strings copies the total once per item: quadratic in what the template was given.
    if not isinstance(start, int | float):
        raise TemplateError("the sum filter adds numbers only; use join for strings")


def _tojson(value: Any, indent: Any = None) -> None:
    if isinstance(indent, int) and indent > MAX_JSON_INDENT:
        raise TemplateError(f"the tojson filter indents by at most {MAX_JSON_INDENT}")
    _expanding("tojson", 6)(value)  # a character may become six (\u003c): doubled again at each tojson


def _expanding(name: str, factor: int) -> Callable[..., None]:
    """A filter whose output may be ``factor`` times its input (escaping): measured at that worst case, since each
    application multiplies what the last one made."""

    def check(value: Any, *_: Any, **__: Any) -> None:
        current().fits(factor * (len(value) if isinstance(value, str) else len(str(value))) + 2,
                       f"the {name} filter")
    return check


def _urlize(text: Any, trim_url_limit: Any = None, nofollow: Any = False, target: Any = None, rel: Any = None,
            *_: Any, **__: Any) -> None:
    # Each word may become a link: written twice, with the rel and target attributes around it.
    text = str(text)
    per_word = len(str(target or "")) + len(str(rel or "")) + 64
    current().fits(2 * len(text) + (text.count(" ") + 1) * per_word, "the urlize filter")


def _format(value: Any, *_: Any, **__: Any) -> None:
    check_printf(str(value))


def _join(value: Any, *rest: Any, **kwargs: Any) -> tuple[Any, ...]:
    items = list(value)  # read once, measured, and handed on as a list (an iterator would be spent)
    separator = rest[0] if rest else kwargs.get("d", "")
    # With an attribute, each item is measured whole: what it writes is part of it.
    attribute = rest[1] if len(rest) > 1 else kwargs.get("attribute")
    measured = items if attribute is None else [str(item) for item in items]
    current().fits(joined_size(measured, str(separator)), "the join filter")
    return (items, *rest)


# The filters that can make a value much larger than their input, and the check each gets first (with the
# filter's arguments less the context, environment or evaluation context Jinja2 passes some of them).
CHECKS: dict[str, Callable[..., Any]] = {
    "center": _width("center", "width"), "batch": _width("batch", "linecount"), "slice": _width("slice", "slices"),
    "indent": _indent,
    "replace": _replace, "wordwrap": _wordwrap, "sum": _sum, "tojson": _tojson, "format": _format, "join": _join,
    "pprint": _expanding("pprint", 4), "escape": _expanding("escape", 6), "e": _expanding("e", 6),
    "forceescape": _expanding("forceescape", 6), "urlize": _urlize,
}


def checked(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    check = CHECKS.get(name)
    passes = getattr(func, "jinja_pass_arg", None) is not None
    what = f"the {name} filter"

    @functools.wraps(func)  # copies jinja_pass_arg: Jinja2 passes the wrapper what it passed the filter
    def run(*args: Any, **kwargs: Any) -> Any:
        if check is not None:
            head, given = (args[:1], args[1:]) if passes else ((), args)
            replaced = check(*given, **kwargs)
            args = (*head, *(replaced if replaced is not None else given))
        result = func(*args, **kwargs)
        budget = current()
        budget.tick()
        # batch(n, fill_with=a) and map(default=a) repeat what they were given: what any filter returns is weighed.
        return budget.weights.guarded(result, what)

    return run


def guarded_tests(tests: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """Jinja2's tests, each followed by a look at the clock: ``eq``, ``in`` and the like compare in C."""

    def ticked(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            result = func(*args, **kwargs)
            current().tick()
            return result
        return run

    return {name: ticked(func) for name, func in tests.items()}


def guarded_filters(filters: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """Jinja2's filters with their checks, and the internal ones."""
    guarded = {name: checked(name, func) for name, func in filters.items()}
    guarded.update({LOOP: loop_guard, OUTPUT: output_guard, CHARGE: charge, CONCAT: concat_guard, BUILD: build,
                    TICK: tick})
    return guarded
