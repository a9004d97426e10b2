"""pydantic's validation errors in the gateway's own words: what the value must be, never "Input should be ...".

Used where settings become the start-up message (``settings/loading.py``) and where a request's fields become
the ``errors`` of a problem+json answer (``mail_gateway.mail.request``). ``must_be`` never repeats the input, so
a secret's value cannot leak through it; a caller that may show the input decides that itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

_WHEN = "an RFC 3339 date and time with an offset, e.g. 2030-01-31T09:00:00+01:00"


def _number(value: Any) -> Any:
    """``0.0`` -> ``0``: a bound of a float setting as a person writes it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _count(number: Any, what: str) -> str:
    return f"{number} {what}" if number == 1 else f"{number} {what}s"


def _choices(ctx: Mapping[str, Any]) -> str:
    return f"must be one of {ctx.get('expected', 'the listed choices')}"


# pydantic's error type -> what the value must be, from the error's context.
_PHRASES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "missing": lambda ctx: "is required",
    "extra_forbidden": lambda ctx: "unknown field; remove it",
    "int_parsing": lambda ctx: "must be a whole number",
    "int_type": lambda ctx: "must be a whole number",
    "int_from_float": lambda ctx: "must be a whole number",
    "float_parsing": lambda ctx: "must be a number",
    "float_type": lambda ctx: "must be a number",
    "finite_number": lambda ctx: "must be a finite number, not nan or inf",
    "bool_parsing": lambda ctx: "must be true or false",
    "bool_type": lambda ctx: "must be true or false",
    "string_type": lambda ctx: "must be text",
    "list_type": lambda ctx: "must be a list",
    "tuple_type": lambda ctx: "must be a list",
    "dict_type": lambda ctx: "must be an object",
    "model_type": lambda ctx: "must be an object",
    "model_attributes_type": lambda ctx: "must be an object",
    "path_type": lambda ctx: "must be a file path",
    "literal_error": _choices,
    "enum": _choices,
    "greater_than": lambda ctx: f"must be more than {_number(ctx['gt'])}",
    "greater_than_equal": lambda ctx: f"must be at least {_number(ctx['ge'])}",
    "less_than": lambda ctx: f"must be less than {_number(ctx['lt'])}",
    "less_than_equal": lambda ctx: f"must be at most {_number(ctx['le'])}",
    "string_too_short": lambda ctx: f"must be at least {_count(ctx['min_length'], 'character')} long",
    "string_too_long": lambda ctx: f"must be at most {_count(ctx['max_length'], 'character')} long",
    # A secret's length is reported as a "Value"'s, in characters; a list's in items.
    "too_short": lambda ctx: (f"must be at least {_count(ctx['min_length'], 'character')} long"
                              if ctx.get("field_type") == "Value" else
                              f"must hold at least {_count(ctx['min_length'], 'item')}"),
    "too_long": lambda ctx: (f"must be at most {_count(ctx['max_length'], 'character')} long"
                             if ctx.get("field_type") == "Value" else
                             f"must hold at most {_count(ctx['max_length'], 'item')}"),
    "string_pattern_mismatch": lambda ctx: f"must match the pattern {ctx['pattern']}",
    "url_parsing": lambda ctx: "must be a URL, e.g. https://example.com/path",
    "url_type": lambda ctx: "must be a URL, e.g. https://example.com/path",
    "url_scheme": lambda ctx: f"must be a URL of scheme {ctx['expected_schemes']}",
    "json_invalid": lambda ctx: "must be valid JSON",
    "json_type": lambda ctx: "must be JSON text",
    "datetime_parsing": lambda ctx: f"must be {_WHEN}",
    "datetime_from_date_parsing": lambda ctx: f"must be {_WHEN}",
    "datetime_type": lambda ctx: f"must be {_WHEN}",
    "timezone_aware": lambda ctx: f"must be {_WHEN}",
}
_PYDANTIC_SUBJECT = re.compile(r"^(Input|String|List|Value|Dictionary|Tuple|Set|URL|Data) should ")


def worded(error: Mapping[str, Any]) -> bool:
    """Whether ``must_be`` says ``error`` in the gateway's words (not a rule of the gateway's own: those are
    ``value_error``s whose message already is)."""
    return error["type"] in _PHRASES


def must_be(error: Mapping[str, Any]) -> str:
    """What the value must be (``must be a whole number``); for a rule of the gateway's own, its message."""
    phrase = _PHRASES.get(error["type"])
    if phrase is not None:
        try:
            return phrase(error.get("ctx") or {})
        except KeyError:  # a context this version of pydantic does not give: pydantic's message, reworded below
            pass
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return _PYDANTIC_SUBJECT.sub("must ", message)
