"""Query parameters, read one way by every route that takes them: each one the route's model knows, given at most
once, whole numbers in plain digits within the model's bounds. Anything else is a 400 ``invalid-query`` problem
naming each parameter and what it takes, answered before a store or an outbox is asked anything."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from annotated_types import Ge, Le
from flask import request
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from mail_gateway.errors import FieldError
from mail_gateway.http.problems import Problem

Query = TypeVar("Query", bound=BaseModel)
# ASCII digits, and few: str.isdigit() also takes '²', which int() refuses, int() refuses more than 4300 digits,
# and 18 digits are beyond every bound while still within a 64-bit database integer.
WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")
TWICE = "given more than once; give it once"


def invalid_query(errors: list[FieldError]) -> Problem:
    names = ", ".join(dict.fromkeys(error.field for error in errors))
    return Problem(400, "Invalid query", f"Check the query parameters: {names}.", "invalid-query", errors)


def bounds(field: FieldInfo) -> tuple[int, int]:
    """A whole-number parameter's range, from its model's ``ge`` and ``le``: every one has both, so no value
    can reach a database beyond its integers."""
    low = next((m.ge for m in field.metadata if isinstance(m, Ge)), None)
    high = next((m.le for m in field.metadata if isinstance(m, Le)), None)
    if not isinstance(low, int) or not isinstance(high, int):
        raise TypeError(f"a whole-number query parameter needs ge and le bounds: {field}")
    return low, high


def _whole_number_error(name: str, field: FieldInfo, raw: str) -> FieldError | None:
    low, high = bounds(field)
    if WHOLE_NUMBER.fullmatch(raw) and low <= int(raw) <= high:
        return None
    return FieldError(name, f"set it to a whole number from {low} to {high}")


def _nameless(query_string: bytes) -> bool:
    # A pair without a name ("?=x"), which request.args keeps under "" only when it has a value.
    return any(pair.partition(b"=")[0] == b"" and pair for pair in query_string.split(b"&"))


def _read_errors(fields: dict[str, FieldInfo]) -> list[FieldError]:
    args = request.args
    errors = [FieldError(name, f"remove it; the parameters are {', '.join(sorted(fields))}")
              for name in sorted(set(args) - set(fields) - {""})]
    if "" in args or _nameless(request.query_string):
        errors.append(FieldError("query", "holds a parameter without a name (such as '=x'); remove it"))
    for name, field in fields.items():
        given = args.getlist(name)
        if len(given) > 1:  # reading the first would answer another question than the one asked
            errors.append(FieldError(name, TWICE))
        elif given and field.annotation is int:
            errors.extend(e for e in [_whole_number_error(name, field, given[0])] if e is not None)
    return errors


def _message(error: Any) -> str:
    return str(error["msg"]).removeprefix("Value error, ")


def parse_query(model: type[Query]) -> Query:
    """The request's query string as ``model``, or a 400 problem naming every parameter that is wrong."""
    fields = {field.alias or name: field for name, field in model.model_fields.items()}
    errors = _read_errors(fields)
    if errors:
        raise invalid_query(errors)
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise invalid_query([FieldError(str(e["loc"][0]) if e["loc"] else "query", _message(e))
                             for e in exc.errors(include_url=False)]) from exc
