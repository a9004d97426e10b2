"""A point in time in a request (``send_at``, a suppression's ``expires_at``): RFC 3339 text with an offset, within
the years a time can be shown in UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

# pydantic alone reads a number, or a string of one ("1900000000", "-5", ".5"), as a Unix time: a form the API
# does not document, and one a client sends by mistake (milliseconds, a relative delay). The digits before a
# point and after it are matched by parts that cannot share one ([0-9]+\.?[0-9]* could split a run of digits
# every way, and tried each for a long one followed by anything else: quadratic).
_NUMBER = re.compile(r"[+-]?([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
RFC3339_FORM = "a date and time with its offset (RFC 3339), e.g. 2030-01-31T09:00:00+01:00"


def _not_a_number(value: Any) -> Any:
    if isinstance(value, (int, float)) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise ValueError(f"must be {RFC3339_FORM}; a number is not read as a Unix time")
    return value


def _within_utc_years(value: datetime) -> datetime:
    # An offset carries 0001-01-01 into the year 0 in UTC, or 9999-12-31 into the year 10000: a timestamp the
    # store keeps, but no RFC 3339 time (nor Python's datetime) can show it, and every listing showing it failed.
    try:
        value.astimezone(UTC)
    except OverflowError:
        edge = "before 0001-01-01T00:00:00Z" if value.year == 1 else "after 9999-12-31T23:59:59Z"
        raise ValueError(f"is {edge} in UTC; give a time within those years") from None
    return value


# A point in time as RFC 3339 text with an offset, never a bare number.
Rfc3339Time = Annotated[AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(_within_utc_years)]
