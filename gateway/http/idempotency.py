"""The ``Idempotency-Key`` header on the send routes, on top of ``IdempotencyStore`` (``idempotency_store``)."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request

from mail_gateway.errors import GatewayError, InvalidMessageError, TransientDeliveryError
from mail_gateway.http.body import json_body
from mail_gateway.http.idempotency_store import IdempotencyStore, StoredResponse
from mail_gateway.http.problems import Problem, problem_for

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
STORE_KEY = "mail_gateway_idempotency"
_VALID_KEY = re.compile(r"[!-~](?:[ -~]{0,253}[!-~])?")  # 1-255 printable ASCII, no outer spaces

log = logging.getLogger("mail_gateway.http")
View = TypeVar("View", bound=Callable[..., Any])


def register_idempotency(app: Flask, store: IdempotencyStore) -> None:
    app.extensions[STORE_KEY] = store


def request_fingerprint(payload: Any) -> str:
    # The same JSON with other whitespace or key order is the same request.
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{request.method} {request.path}\n{canonical}".encode()).hexdigest()


def scoped_key(raw_key: str) -> str:
    """Keys are per client (the API key's hash): two clients picking the same key never see each other's."""
    return f"{g.get('client_id', 'anonymous')}:{raw_key}"


def _stored(response: Response) -> StoredResponse:
    return StoredResponse(response.status_code, response.mimetype or "application/json", response.get_data())


def _conflict(kind: str) -> Problem:
    if kind == "in-flight":
        return Problem(409, "Request in flight",
                       f"A request with this {HEADER} is still being processed; retry once it has finished.",
                       "idempotency-key-in-flight", headers={"Retry-After": "1"})
    return Problem(409, f"{HEADER} reused",
                   f"This {HEADER} was used for a different request (another body or route) within 24 hours; "
                   "send a new key with a new request.", "idempotency-key-reused")


def _unavailable(exc: sqlite3.Error) -> Problem:
    log.error("idempotency store unavailable: %s", exc)
    return Problem(503, "Idempotency store unavailable",
                   "The idempotency store could not be reached; nothing was sent, retry later.",
                   "idempotency-store-unavailable", headers={"Retry-After": "5"})


def _record(store: IdempotencyStore, key: str, response: StoredResponse) -> None:
    try:
        store.finish(key, response)
    except sqlite3.Error as exc:  # the send happened: report it; the key stays in flight, so no resend
        log.error("could not record an idempotent response: %s", exc)


def _forget(store: IdempotencyStore, key: str) -> None:
    try:
        store.release(key)
    except sqlite3.Error as exc:  # the key stays in flight: retries get 409, never a second send
        log.error("could not release an idempotency key: %s", exc)


def idempotent(view: View) -> View:
    """Without the header the view runs as usual. With it, the first request's final response is stored and
    replayed to retries; a retry while it is in flight, or with another body, is 409."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        raw_key = request.headers.get(HEADER)
        if raw_key is None:
            return view(*args, **kwargs)
        if not _VALID_KEY.fullmatch(raw_key):
            raise Problem(400, f"Invalid {HEADER}", f"{HEADER} must be 1 to 255 printable ASCII characters.",
                          "invalid-idempotency-key")
        store: IdempotencyStore = current_app.extensions[STORE_KEY]
        key = scoped_key(raw_key)
        try:
            begun = store.begin(key, request_fingerprint(json_body()))
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc
        if begun.replay is not None:
            replay = begun.replay
            return Response(replay.body, status=replay.status, mimetype=replay.mimetype,
                            headers={REPLAYED_HEADER: "true"})
        if begun.conflict is not None:
            raise _conflict(begun.conflict)
        try:
            result = view(*args, **kwargs)
        except (Problem, InvalidMessageError, TransientDeliveryError):
            _forget(store, key)  # refused before sending, or nothing accepted: a retry must really retry
            raise
        except GatewayError as exc:
            _record(store, key, _stored(problem_for(exc).response()))
            raise
        except Exception:
            _record(store, key, _stored(problem_for(GatewayError()).response()))
            raise
        response = current_app.make_response(result)
        _record(store, key, _stored(response))
        return response

    return wrapper  # type: ignore[return-value]
