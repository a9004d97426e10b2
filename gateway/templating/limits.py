"""What one rendering may do, and the checks that hold it to that.

Jinja2 offers no timeout, and a template is code: ``{% for %}`` inside ``{% for %}``, ``'x' * 10**9``, a string
doubled in a loop. So a rendering runs against a ``Budget``: every loop iteration and call is a *step*
(GATEWAY_TEMPLATE_MAX_STEPS; the wall clock is looked at on each step too), every character written — the
parts, and every macro's, ``{% set %}`` block's and ``{% filter %}`` block's output — is charged to the output
(GATEWAY_TEMPLATE_MAX_OUTPUT), and each operation that can make a value much larger than its operands (``*``,
``**``, ``+``, ``~``, ``%``, ``str.format``, ``ljust`` and the like, the ``replace``, ``join``, ``center``,
``indent`` filters...) is checked *before* it runs against that same bound; so is every list, tuple and dict a
template makes, weighed with what it holds in full (``weight``), since comparing or writing one walks all of it.
Each step thus does a bounded amount of work, and the steps are counted: that is what bounds a rendering's time.
"""

from __future__ import annotations

import re
import string
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from mail_gateway.errors import TemplateError
from mail_gateway.templating.weight import Weights

MAX_BITS = 14_000  # 4,215 digits: an integer with more bits could have more than Python converts to text (4,300)
# What follows a %-format field's key (flags, width, precision, length modifier, conversion), as Python reads it.
_PRINTF_SPEC = re.compile(r"[#0 +-]*(\*|[0-9]+)?(?:\.(\*|[0-9]+))?[hlL]?.?", re.DOTALL)
_PARENTHESES = re.compile(r"[()]")
_DIGITS = re.compile(r"\d+")
_REFUSED_METHODS = frozenset({"encode", "to_bytes", "translate", "maketrans"})


@dataclass
class Budget:
    max_steps: int
    max_output: int
    deadline: float  # time.monotonic()
    seconds: float
    steps: int = 0
    output: int = 0
    weights: Weights = field(init=False)  # of the lists, tuples and dicts made, bounded by max_output as well

    def __post_init__(self) -> None:
        self.weights = Weights(self.max_output)

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.max_steps:
            raise TemplateError(f"it makes more than {self.max_steps} loop iterations and calls "
                                "(GATEWAY_TEMPLATE_MAX_STEPS); loop over less")
        self.tick()

    def tick(self) -> None:
        """The clock alone, after work that is no step but may walk a large value (a comparison, a filter, a
        value written): each is bounded, but a template may write thousands of them with no loop between."""
        if time.monotonic() >= self.deadline:
            raise TemplateError(f"it takes longer than {self.seconds:g} s to render; make it do less")

    def charge(self, size: int) -> None:
        self.output += max(size, 0)
        if self.output > self.max_output:
            raise TemplateError(f"it writes more than {self.max_output} characters (GATEWAY_TEMPLATE_MAX_OUTPUT); "
                                "make it shorter")

    def fits(self, size: int, what: str) -> None:
        if size > self.max_output:
            raise TemplateError(f"{what} would make a value of {size} characters, more than "
                                f"GATEWAY_TEMPLATE_MAX_OUTPUT ({self.max_output}) allows")


_current: ContextVar[Budget | None] = ContextVar("mail_gateway_template_budget", default=None)


@contextmanager
def budget(max_steps: int, max_output: int, seconds: float) -> Iterator[Budget]:
    """The budget of the renderings in this block (one message's subject, text and HTML together)."""
    given = Budget(max_steps, max_output, time.monotonic() + seconds, seconds)
    token = _current.set(given)
    try:
        yield given
    finally:
        _current.reset(token)


def current() -> Budget:
    found = _current.get()
    if found is None:  # a template is rendered only inside budget(); anything else is a bug, not a user error
        raise RuntimeError("a template was rendered without a budget")
    return found


def size(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple | dict | set | frozenset) else 1


def check_binop(operator: str, left: Any, right: Any) -> None:
    """``*``, ``**``, ``+`` and ``%`` of a template, before they run."""
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "*" and ints:
        if left.bit_length() + right.bit_length() > MAX_BITS:
            raise TemplateError(f"a product of integers would have more than {MAX_BITS} bits")
    elif operator == "*":
        count, sequence = (right, left) if isinstance(right, int) else (left, right)
        if isinstance(count, int) and not isinstance(sequence, int | float):
            current().fits(size(sequence) * max(count, 0), "'*'")
    elif operator == "**" and ints and abs(left) > 1 and right > 0:
        if right * left.bit_length() > MAX_BITS:
            raise TemplateError(f"a power would have more than {MAX_BITS} bits")
    elif operator == "+" and not isinstance(left, int | float):
        current().fits(size(left) + size(right), "'+'")
    elif operator == "%" and isinstance(left, str):
        fields = check_printf(left)
        arguments = right.values() if isinstance(right, dict) else right if isinstance(right, tuple) else (right,)
        current().fits(filled_size(left, fields, arguments), "a %-format")


def check_printf(text: str) -> int:
    """A %-format's widths and precisions (``'%999999999d' % 1`` would be a gigabyte of spaces); its fields."""
    fields = 0
    for numbers in _printf_fields(text):
        fields += 1
        for number in numbers:
            if number == "*":
                raise TemplateError("a '*' width or precision in a %-format is not allowed; write the number")
            if number:
                current().fits(int(number), "a %-format's width or precision")
    return fields


def _printf_fields(text: str) -> Iterator[tuple[str | None, str | None]]:
    """Each field's width and precision, in one pass, as Python reads them: a key's parentheses nest ('%(a(b)c)9s'
    is the key a(b)c, width 9, which a pattern reading to the first ')' missed), '%%' is no field, and a key
    never closed ends the format (Python refuses it; a pattern scanned to the end from each such '%(')."""
    position = 0
    while (start := text.find("%", position)) >= 0:
        position, depth = start + 1, 0
        if text.startswith("%", position):
            position += 1
            continue
        for parenthesis in _PARENTHESES.finditer(text, position) if text.startswith("(", position) else ():
            depth += 1 if parenthesis.group() == "(" else -1
            if depth == 0:
                position = parenthesis.end()
                break
        if depth:
            return
        spec = _PRINTF_SPEC.match(text, position)  # all of it optional: it always matches
        position = spec.end()  # type: ignore[union-attr]
        yield spec.group(1), spec.group(2)  # type: ignore[union-attr]


def check_format(text: str) -> None:
    """A ``str.format`` string's widths and precisions (what its fields may reach the sandbox checks)."""
    for _, _, spec, _ in string.Formatter().parse(text):
        if spec and "{" in spec:
            raise TemplateError("a field inside a format specification is not allowed; write the number")
        for number in _DIGITS.findall(spec or ""):
            current().fits(int(number), "a format's width or precision")


def filled_size(text: str, fields: int, arguments: Any) -> int:
    """At most how long a format with ``fields`` fields comes out: each field may write the longest argument
    (the same one can fill every field: '{0}{0}{0}')."""
    longest = max((len(a) if isinstance(a, str) else len(str(a)) for a in arguments), default=0)
    return len(text) + fields * longest


def replaced_size(text: str, old: str, new: str, count: int = -1) -> int:
    found = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


def joined_size(items: list[Any], separator: str) -> int:
    """How long ``separator.join(items)`` would be; stops counting once it is too long anyway."""
    limit = current().max_output
    total = max(len(items) - 1, 0) * len(separator)
    for item in items:
        if total > limit:
            break
        total += len(item) if isinstance(item, str) else len(str(item))
    return total


def check_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """A call of one of ``str``'s methods that can make a string much longer than itself; the arguments to call
    it with (an iterable to join is read into a list to be measured)."""
    method = getattr(method, "__wrapped__", method)  # the sandbox hands out str.format wrapped in its own check
    owner, name = getattr(method, "__self__", None), getattr(method, "__name__", "")
    if name in _REFUSED_METHODS and isinstance(owner, str | int):
        # Bytes (whose methods none of the checks below cover) and translate tables (one character to any
        # string): what a mail's text needs neither of.
        raise TemplateError(f"{type(owner).__name__}.{name} is not available in templates; templates write text")
    if not isinstance(owner, str):
        return args
    budget_ = current()
    given = [*args, *kwargs.values()]
    if name in ("center", "ljust", "rjust", "zfill") and given and isinstance(given[0], int):
        budget_.fits(given[0], f"str.{name}")
    elif name == "expandtabs":
        tab = given[0] if given and isinstance(given[0], int) else 8
        budget_.fits(len(owner) + owner.count("\t") * tab, "str.expandtabs")
    elif name == "replace" and len(args) >= 2:
        budget_.fits(replaced_size(owner, str(args[0]), str(args[1]), *args[2:3]), "str.replace")
    elif name == "join" and args:
        items = list(args[0])
        budget_.fits(joined_size(items, owner), "str.join")
        return (items, *args[1:])
    elif name in ("format", "format_map"):
        check_format(owner)
        fields = sum(1 for _, field, _, _ in string.Formatter().parse(owner) if field is not None)
        mapping = args[0] if name == "format_map" and args and isinstance(args[0], dict) else {}
        arguments = [*args, *kwargs.values()] if name == "format" else [*mapping.values()]
        budget_.fits(filled_size(owner, fields, arguments), f"str.{name}")
    return args
