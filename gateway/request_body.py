"""Read a JSON request body, answering 415 for another media type and 400 for malformed JSON."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from gateway.problems import Problem


def json_body() -> Any:
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise Problem(415, "Unsupported media type",
                      f"Send the body as JSON with 'Content-Type: application/json' (got {mimetype or 'none'!r}).",
                      "unsupported-media-type")
    try:
        return json.loads(request.get_data(cache=True))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem(400, "Malformed JSON", f"The body is not valid JSON: {exc}.", "malformed-json") from exc
