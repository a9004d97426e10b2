"""The answer to a keyed request whose process died mid-request, built from what the store recorded.

Each message's outcome was recorded as it happened. A message with a recorded outcome is reported as it was; one
without may or may not have reached the upstream (it was in flight, or about to be), so it is reported as
"outcome unknown" and never sent again — the client decides, knowing exactly which ones those are.
"""

from __future__ import annotations

from typing import Any

from flask import Response, json, request

from mail_gateway.http.body import json_body
from mail_gateway.http.problems import PROBLEM_JSON, Problem

INTERRUPTED = ("The gateway stopped while this message was being sent: it may or may not have been delivered, "
               "so it was not sent again.")


def _unknown(position: int) -> dict[str, Any]:
    problem = Problem(503, "Delivery outcome unknown", INTERRUPTED, "delivery-outcome-unknown")
    return {"status": "failed", "error": problem.body()}


def _single(item: dict[str, Any]) -> Response:
    if item["status"] == "failed":
        error = item["error"]
        return Response(json.dumps(error), status=error["status"], mimetype=PROBLEM_JSON)
    body = {k: v for k, v in item.items() if k != "status"} if item["status"] == "accepted" else item
    return Response(json.dumps(body), status=202, mimetype="application/json")


def answer_for_abandoned(recorded: dict[int, dict[str, Any]]) -> Response:
    """The batch route's results, one per message; a single-message route's own answer for its one message."""
    if request.path.endswith("/batch"):
        messages = json_body().get("messages") or []
        results = [{"index": i, **recorded.get(i, _unknown(i))} for i in range(len(messages))]
        return Response(json.dumps({"results": results}), status=200, mimetype="application/json")
    return _single(recorded.get(0, _unknown(0)))
