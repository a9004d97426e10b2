"""Read a JSON request body, answering 415 for another media type (400 for Content-Type sent twice), 413 when too
large, 400 for malformed JSON (including JSON nested too deeply to parse, an integer too long to convert, and
``NaN`` or ``Infinity``, which Python's parser takes but RFC 8259 has no place for).

The body is parsed once per request and kept on ``flask.g``: the idempotency check and the view share it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import g, request
from werkzeug.exceptions import RequestEntityTooLarge

from mail_gateway.http.headers import one_value
from mail_gateway.http.problems import Problem

_UNSET = object()
_MAX_DIGITS = 4300  # int()'s own bound (sys.get_int_max_str_digits), said in the client's terms


def _integer(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > _MAX_DIGITS:
        raise ValueError(f"a number has {digits} digits, more than the {_MAX_DIGITS} one may have here; "
                         "send it as a string")
    return int(text)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: valid JSON, but no float holds it (it would be written as "inf")
        raise ValueError(f"the number {text[:40]} is beyond a 64-bit float's range; send a smaller one or a string")
    return value


def _no_constant(name: str) -> None:
    # Python writes and reads NaN and Infinity; JSON (RFC 8259) has neither, and PostgreSQL's jsonb refuses both.
    raise ValueError(f"{name} is not a JSON number (RFC 8259 has none); send a number or a string")


def _content_length(environ: dict[str, Any]) -> int | None:
    raw = environ.get("CONTENT_LENGTH", "")
    if raw.isascii() and raw.isdigit() and "HTTP_TRANSFER_ENCODING" not in environ:
        return int(raw)  # the usual request, read as Werkzeug reads it without building its header view
    return request.content_length


def _body() -> bytes:
    limit = request.max_content_length
    length = _content_length(request.environ)
    if length is not None:
        if limit is not None and length > limit:
            raise RequestEntityTooLarge()
        # WSGI's own way to read a body of known length: exactly CONTENT_LENGTH bytes of wsgi.input. Werkzeug's
        # get_data wraps the stream first, which cost a fifth of the send route's time for a small message.
        return request.environ["wsgi.input"].read(length)
    data = request.get_data(cache=False)  # parsed once, kept parsed (``json_body``): not kept twice
    # Without a Content-Length (a chunked body) Werkzeug stops reading at the limit instead of refusing, so a
    # body that reached it is treated as too large rather than parsed truncated.
    if limit is not None and len(data) >= limit:
        raise RequestEntityTooLarge()
    return data


def _text(data: bytes) -> str:
    """The body decoded as ``json.loads`` decodes bytes, but with the bytes freed before parsing starts: for a
    large raw message (40 MB of base64) that is one whole copy fewer at the request's peak."""
    return data.decode(json.detect_encoding(data), "surrogatepass")


# One decoder for every request: json.loads with these arguments would build one (and its scanner) each time.
_DECODER = json.JSONDecoder(parse_int=_integer, parse_float=_finite, parse_constant=_no_constant)


def release_json_body() -> None:
    """Forget the parsed body before the request ends, once the view has what it needs from it: a raw message's
    base64 text need not stay in memory while the message it decoded to is stored."""
    g.pop("json_body", None)


def json_body() -> Any:
    parsed = g.get("json_body", _UNSET)
    if parsed is not _UNSET:
        return parsed
    content_type = request.environ.get("CONTENT_TYPE")
    if content_type == "application/json":  # the usual one needs no parsing (what request.mimetype does each call)
        mimetype = content_type
    else:
        one_value("Content-Type")  # two are refused as such, rather than as a media type that is neither
        mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise Problem(415, "Unsupported media type",
                      f"Send the body as JSON with 'Content-Type: application/json' (got {mimetype or 'none'!r}).",
                      "unsupported-media-type")
    try:
        parsed = _DECODER.decode(_text(_body()))
    except RecursionError as exc:  # nesting deeper than the parser's stack allows
        raise Problem(400, "Malformed JSON", "The body's JSON nests too deeply; send a flat message object.",
                      "malformed-json") from exc
    except ValueError as exc:  # invalid JSON, invalid UTF-8, or a number refused above
        raise Problem(400, "Malformed JSON", f"The body is not valid JSON: {exc}.", "malformed-json") from exc
    g.json_body = parsed
    return parsed
