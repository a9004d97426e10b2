"""The ``Idempotency-Key`` header on the send routes, on top of the keys in the store (``Keyring``)."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request

from mail_gateway.errors import (
    FieldError,
    GatewayError,
    InvalidMessageError,
    StoreUnavailableError,
    TransientDeliveryError,
)
from mail_gateway.http.abandoned import answer_for_abandoned
from mail_gateway.http.body import json_body
from mail_gateway.http.headers import one_value
from mail_gateway.http.keyring import KeyedRequest, Keyring
from mail_gateway.http.problems import Problem, problem_for
from mail_gateway.store.keys import StoredResponse

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
STORE_KEY = "mail_gateway_idempotency"
_VALID_KEY = re.compile(r"[!-~](?:[ -~]{0,253}[!-~])?")  # 1-255 printable ASCII, no outer spaces
# The keys taken, for the OpenAPI document: what _VALID_KEY matches, with commas only inside complete quoted strings
# (headers.one_value refuses any other comma as two keys joined).
_QUOTED = r'"(?:[ !#-\[\]-~]|\\[ -~])*"'
KEY_PATTERN = (r"^(?:[!-+\--~](?:[ -+\--~]*[!-+\--~])?"
               rf"|(?:{_QUOTED}|[!#-+\--~])(?:(?:{_QUOTED}|[ !#-+\--~])*(?:{_QUOTED}|[!#-+\--~]))?)$")
_CANONICAL: dict[str, Any] = {"sort_keys": True, "separators": (",", ":"), "ensure_ascii": False}
LARGE_BODY = 1 << 20  # bytes of JSON from which the fingerprint is hashed in pieces
_SLICE = 1 << 16  # characters of a long string escaped and hashed at a time

log = logging.getLogger("mail_gateway.http")
View = TypeVar("View", bound=Callable[..., Any])


def register_idempotency(app: Flask, keyring: Keyring) -> None:
    app.extensions[STORE_KEY] = keyring


def request_fingerprint(payload: Any) -> str:
    """The digest of the route and the payload as canonical JSON: the same JSON with other whitespace or key order
    is the same request. A large body's JSON is hashed a piece at a time (``canonical_pieces``): built whole, then
    encoded, a 30 MB raw message's base64 was copied three times more, twice the rest of the request's peak."""
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    large = (request.content_length or 0) > LARGE_BODY
    for piece in canonical_pieces(payload) if large else (json.dumps(payload, **_CANONICAL),):
        # surrogatepass: JSON may carry a lone surrogate ("\ud800"), which the view refuses with a 422 naming the
        # field; the fingerprint is taken first, and must not fail on it instead.
        digest.update(piece.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def canonical_pieces(value: Any) -> Iterator[str]:
    """``json.dumps(value, **_CANONICAL)`` in pieces, a long string's a slice at a time (JSON escapes character by
    character, so the slices join to the same text)."""
    if isinstance(value, dict):
        yield "{"
        for n, key in enumerate(sorted(value)):
            yield ("," if n else "") + json.dumps(key, **_CANONICAL) + ":"
            yield from canonical_pieces(value[key])
        yield "}"
    elif isinstance(value, list):
        yield "["
        for n, item in enumerate(value):
            yield "," if n else ""
            yield from canonical_pieces(item)
        yield "]"
    elif isinstance(value, str) and len(value) > _SLICE:
        yield '"'
        for start in range(0, len(value), _SLICE):
            yield json.dumps(value[start:start + _SLICE], **_CANONICAL)[1:-1]
        yield '"'
    else:
        yield json.dumps(value, **_CANONICAL)


def scoped_key(raw_key: str) -> str:
    """Keys are per client (the API key's hash): two clients picking the same key never see each other's."""
    return f"{g.get('client_id', 'anonymous')}:{raw_key}"


def _stored(response: Response) -> StoredResponse:
    return StoredResponse(response.status_code, response.mimetype or "application/json", response.get_data())


def _replay(stored: StoredResponse) -> Response:
    return Response(stored.body, status=stored.status, mimetype=stored.mimetype, headers={REPLAYED_HEADER: "true"})


def _conflict(kind: str) -> Problem:
    if kind == "in-flight":
        return Problem(409, "Request in flight",
                       f"A request with this {HEADER} is still being processed; retry once it has finished.",
                       "idempotency-key-in-flight", headers={"Retry-After": "1"})
    return Problem(409, f"{HEADER} reused",
                   f"This {HEADER} was used for a different request (another body or route) within 24 hours; "
                   "send a new key with a new request.", "idempotency-key-reused")


def unavailable(exc: StoreUnavailableError) -> Problem:
    log.error("store unavailable for an idempotency key: %s", exc)
    return Problem(503, "Store unavailable",
                   "The gateway's store did not answer in time; nothing was sent, retry later.",
                   "store-unavailable", headers={"Retry-After": "5"})


def _quietly(action: Callable[[], None], what: str) -> None:
    try:
        action()
    except StoreUnavailableError as exc:  # the key stays in flight, then abandoned: never a second send
        log.error("could not %s: %s", what, exc)


def _run(keyring: Keyring, key: str, holder: str | None, view: Callable[[KeyedRequest], Any]) -> Response:
    with keyring.held(key, holder) as keyed:
        try:
            response = current_app.make_response(view(keyed))
        except (Problem, InvalidMessageError, TransientDeliveryError, StoreUnavailableError):
            _quietly(keyed.release, "release an idempotency key")  # nothing was accepted
            raise
        except GatewayError as exc:
            answer = _stored(problem_for(exc).response())
            _quietly(lambda: keyed.finish(answer), "record a response")
            raise
        except Exception:
            _quietly(lambda: keyed.finish(_stored(problem_for(GatewayError()).response())), "record a response")
            raise
        try:
            if not keyed.finish(_stored(response)):
                _taken_over(bool(keyed.joined))
        except StoreUnavailableError as exc:
            if keyed.joined:  # a queued request's messages were not written either: nothing was accepted
                _quietly(keyed.release, "release an idempotency key")
                raise unavailable(exc) from exc
            log.error("could not record an idempotent response: %s", exc)
    return response


def _taken_over(queued: bool) -> None:
    """This request outlived its key's lease and a retry took the key over. Queued, it wrote nothing, so the retry's
    messages are the only ones: it is answered as a retry in flight is. Direct, its messages went: its answer stands
    and the retry's, recorded first, is the one replayed."""
    log.warning("an idempotency key's lease ran out while its request was alive, and a retry took it over")
    if queued:
        raise _conflict("in-flight")


def idempotent(view: View) -> View:
    """Without the header the view runs as usual. With it, the first request's final response is stored and
    replayed to retries; a retry while it is in flight, or with another body, is 409; a retry of a request whose
    process died is answered with what the store knows of it. The view is given the request as ``keyed`` (a
    ``KeyedRequest``, or None without the header) to hand to the sender: nothing finds it any other way."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        raw_key = one_value(HEADER)  # a key sent twice is refused, never taken as the two joined
        if raw_key is None:
            return view(*args, **kwargs)
        if not _VALID_KEY.fullmatch(raw_key):
            said = "must be 1 to 255 printable ASCII characters without spaces at either end (a UUID, say)"
            raise Problem(400, f"Invalid {HEADER}", f"{HEADER} {said}.", "invalid-idempotency-key",
                          [FieldError(HEADER, said)])
        keyring: Keyring = current_app.extensions[STORE_KEY]
        key = scoped_key(raw_key)
        try:
            begun = keyring.begin(key, request_fingerprint(json_body()))
            if begun.abandoned is not None:
                answer = _stored(answer_for_abandoned(begun.abandoned))
                keyring.finish(key, answer, holder=begun.holder)
                log.warning("answered an abandoned request (its process stopped mid-request) from the store")
                return _replay(answer)
        except StoreUnavailableError as exc:
            raise unavailable(exc) from exc
        if begun.replay is not None:
            return _replay(begun.replay)
        if begun.conflict is not None:
            raise _conflict(begun.conflict)
        return _run(keyring, key, begun.holder, lambda keyed: view(*args, keyed=keyed, **kwargs))

    return wrapper  # type: ignore[return-value]
