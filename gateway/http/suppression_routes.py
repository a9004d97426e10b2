"""The suppression routes: list, add and remove entries of the suppression list (``mail_gateway.suppression``).

The list is the service's, shared by every API key, like the stored templates: a bounce seen through one key's
message protects every key's sending reputation.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from flask import Blueprint
from pydantic import ValidationError

from mail_gateway.errors import FieldError, InvalidMessageError
from mail_gateway.http import docs
from mail_gateway.http.body import json_body
from mail_gateway.http.problems import Problem
from mail_gateway.http.query import parse_query
from mail_gateway.mail.request import validation_errors
from mail_gateway.mail.rfc5322 import check_header_text
from mail_gateway.runtime import Runtime
from mail_gateway.store import suppressions
from mail_gateway.store.webhooks import iso
from mail_gateway.suppression.models import NewSuppression, Suppression, SuppressionList, SuppressionQuery

blueprint = Blueprint("suppressions", __name__)
ERRORS = (400, 401, 404, 413, 415, 422, 500, 503)


def shown(entry: suppressions.Entry) -> dict[str, Any]:
    return {"address": entry.email, "reason": entry.reason, "source": entry.source, "message_id": entry.message_id,
            "detail": entry.detail, "created_at": iso(entry.created_at),
            "expires_at": None if entry.expires_at is None else iso(entry.expires_at)}


def _checked(address: str) -> str:
    try:
        suppressions.key(check_header_text(address))  # a NUL, which PostgreSQL cannot compare, among them
    except ValueError as exc:
        raise InvalidMessageError(errors=[FieldError("address", f"{address!r} is not an email address; give one "
                                                                "such as 'someone@example.com'")]) from exc
    return address


@blueprint.get("/v1/suppressions")
@docs.operation("List the suppression list's entries, by address", operation_id="list_suppressions",
                tag="suppressions", query=SuppressionQuery, responses={200: SuppressionList}, problems=ERRORS)
def list_suppressions() -> dict[str, Any]:
    query = parse_query(SuppressionQuery)
    found = Runtime.of().store.read(lambda conn: suppressions.list_entries(
        conn, contains=query.address, reason=query.reason, limit=query.limit, start=query.start))
    return {"suppressions": [shown(e) for e in found], "limit": query.limit, "start": query.start}


@blueprint.post("/v1/suppressions")
@docs.operation("Add an address to the suppression list (or renew its entry)", operation_id="add_suppression",
                tag="suppressions", body=NewSuppression, responses={201: Suppression}, problems=ERRORS,
                headers={201: {"Location": True}})
def add_suppression() -> tuple[dict[str, Any], int, dict[str, str]]:
    try:
        body = NewSuppression.model_validate(json_body())
    except ValidationError as exc:
        raise InvalidMessageError(errors=validation_errors(exc)) from exc
    address = body.address  # checked by NewSuppression: one bare address
    expires_at = None if body.expires_at is None else body.expires_at.timestamp()
    store, now = Runtime.of().store, time.time()
    store.write(lambda conn: suppressions.add(conn, address, body.reason, source="api", detail=body.detail,
                                              expires_at=expires_at, now=now))
    entry = store.read(lambda conn: suppressions.get(conn, address, now=now))
    if entry is None:  # added already expired
        raise InvalidMessageError("expires_at is in the past; give a later time, or none", field="expires_at")
    return shown(entry), 201, {"Location": f"/v1/suppressions/{quote(entry.email, safe='@')}"}


@blueprint.delete("/v1/suppressions/<path:address>")
@docs.operation("Remove an address from the suppression list", operation_id="remove_suppression",
                tag="suppressions", responses={204: None}, problems=ERRORS)
def remove_suppression(address: str) -> tuple[str, int]:
    _checked(address)
    if not Runtime.of().store.write(lambda conn: suppressions.remove(conn, address)):
        why = f"{address!r} is not on the suppression list; list it with GET /v1/suppressions to check the address"
        raise Problem(404, "No such suppression", why, "no-such-suppression", [FieldError("address", why)])
    return "", 204
