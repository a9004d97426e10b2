"""How large a value is, nested values in full: what comparing it, hashing it or writing it costs.

``{% set a = [a, a] %}`` takes two references, whatever ``a`` holds, so sixty of them make a list of 2**60 items
in a few bytes, and ``==``, ``str()``, ``tojson`` or ``sort`` — C code that no budget looks at — walk every one.
A list, tuple or dict a template makes is therefore weighed when it is made: its weight is about the length of
its text (a string's length, an integer's digits, each item's weight and its separator, nested ones in full),
and one heavier than ``FACTOR`` times GATEWAY_TEMPLATE_MAX_OUTPUT is refused: room for a template to hold more
than it writes and pick from it, while comparing or writing any value stays one bounded piece of work. Each
container weighed (but a light one, cheaper to weigh again) is remembered by ``id()``, so ``[a, a]`` of a known
``a`` costs two look-ups and weighing is linear in what the template makes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from itertools import chain
from typing import Any

from jinja2.utils import Cycler

from mail_gateway.errors import TemplateError

_ITEMS = type({}.items())
CONTAINERS = (list, tuple, dict, set, frozenset, type({}.keys()), type({}.values()), _ITEMS)
SCALARS = (str, int, float, type(None))
FACTOR = 32
# What remembering a container keeps alive, in the units of its weight (about bytes / 4): past KEPT times the
# output limit the oldest remembered are let go, so a loop making lists does not keep every one of them.
_ENTRY, KEPT = 64, 4
_CYCLE = 5  # '[...]': a container within itself (only a caller's own objects can be), written once


def _leaf(value: Any) -> int:
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, int):
        return 2 + value.bit_length() * 3 // 10
    if isinstance(value, float):
        return len(repr(value))
    return 4 if value is None else 16  # any other object writes a short text of its own (a range, a namespace)


def _children(value: Any) -> Iterator[Any]:
    """A container's items; a dict's keys and values, one after the other."""
    if type(value) is list or type(value) is tuple:
        return iter(value)
    if isinstance(value, dict):
        return chain.from_iterable(value.items())
    return chain.from_iterable(value) if isinstance(value, _ITEMS) else iter(value)


class Weights:
    """The weights of one rendering's containers, each kept with its container (so that its ``id()`` stays its
    own) until too many are kept."""

    def __init__(self, max_output: int) -> None:
        self.limit, self._keep = FACTOR * max_output, KEPT * max_output
        self._known: OrderedDict[int, tuple[Any, int, int]] = OrderedDict()  # id: the container, weight, own
        self._held = 0

    def weigh(self, value: Any, what: str) -> int:
        """``value``'s weight; ``TemplateError`` naming ``what`` made it when that is over the limit."""
        if isinstance(value, Cycler):  # cycler(a, a).items is a list the cycler made of its arguments
            value = value.items
        if not isinstance(value, CONTAINERS):
            return _leaf(value)
        known = self._known.get(id(value))
        return known[1] if known is not None else self._walk(value, what)

    def _walk(self, root: Any, what: str) -> int:
        # Depth first without recursion (a variable may nest as deeply as its JSON did), strings and integers
        # (most of what is weighed) taken first. A frame: [container, its items, weight so far, own weight].
        known, limit, stack = self._known, self.limit, []
        frame, open_ = [root, _children(root), 2, _ENTRY], {id(root)}
        while True:
            for child in frame[1]:
                kind = type(child)
                if kind is str:
                    weight = own = len(child) + 2
                elif kind is int:
                    weight = own = 2 + child.bit_length() * 3 // 10
                else:
                    if kind is Cycler:
                        child = child.items
                    if not isinstance(child, CONTAINERS):
                        weight = own = _leaf(child)
                    elif (entry := known.get(id(child))) is not None or id(child) in open_:
                        weight, own = (entry[1] if entry is not None else _CYCLE), 0
                    else:
                        stack.append(frame)
                        frame = [child, _children(child), 2, _ENTRY]
                        open_.add(id(child))
                        break
                frame[2] += weight + 2
                frame[3] += own + 2
                if frame[2] > limit:
                    self._refuse(what)
            else:
                open_.discard(id(frame[0]))
                if frame[2] > _ENTRY:  # a lighter one is weighed again sooner than remembered
                    self.remember(frame[0], frame[2], frame[3])
                if not stack:
                    return frame[2]
                done, frame = frame, stack.pop()
                frame[2] += done[2] + 2
                if frame[2] > limit:
                    self._refuse(what)

    def combined(self, operator: str, left: Any, right: Any) -> int | None:
        """The weight ``left + right`` or ``sequence * count`` will have, from its operands' (known, or weighed
        once): the accumulating ``{% set ns.items = ns.items + [item] %}`` costs no walk of what it has."""
        sequence, count = (left, right) if isinstance(right, int) else (right, left)
        if operator == "+" and isinstance(left, list | tuple) and type(left) is type(right):
            weight = self.weigh(left, "'+'") + self.weigh(right, "'+'") - 2
        elif operator == "*" and isinstance(sequence, list | tuple) and isinstance(count, int):
            weight = 2 + max(count, 0) * (self.weigh(sequence, "'*'") - 2)
        else:
            return None
        if weight > self.limit:
            self._refuse(f"'{operator}'")
        return weight

    def remember(self, value: Any, weight: int, own: int | None = None) -> None:
        if id(value) in self._known:  # t + () is t
            return
        own = own if own is not None else _ENTRY + 2 * len(value)
        self._known[id(value)] = (value, weight, own)
        self._held += own
        while self._held > self._keep and self._known:  # the oldest go first: a loop's last list stays known
            self._held -= self._known.popitem(last=False)[1][2]

    def _refuse(self, what: str) -> None:
        raise TemplateError(f"{what} would make a value of more than {self.limit} characters ({FACTOR} times "
                            "GATEWAY_TEMPLATE_MAX_OUTPUT), nested lists, tuples and dicts counted in full; "
                            "make smaller values")

    def guarded(self, value: Any, what: str) -> Any:
        """What a filter or a call returned: a container weighed, the items of an iterator weighed together as
        they come (``list`` of it would hold them all), anything else as it is."""
        if isinstance(value, SCALARS):
            return value
        if isinstance(value, (*CONTAINERS, Cycler)):
            self.weigh(value, what)
        elif isinstance(value, Iterator):
            return self._yielded(value, what)
        return value

    def _yielded(self, items: Iterator[Any], what: str) -> Iterator[Any]:
        total = 2
        for item in items:
            total += self.weigh(item, what) + 2
            if total > self.limit:
                self._refuse(what)
            yield item
