"""The outbox as it changes: ``wait`` answers as soon as a matching message is kept, and ``/outbox/events`` pushes
every change to the page as Server-Sent Events. Both sleep on the backend's change feed (``KeptState``), woken by
each change, never polling.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app

from mail_gateway.backends.keeping import Change
from mail_gateway.backends.kept import KeptMail
from mail_gateway.errors import FieldError
from mail_gateway.http import docs
from mail_gateway.http.problems import Problem
from mail_gateway.http.query import parse_query
from mail_gateway.outbox import state, views
from mail_gateway.outbox.models import MessageSummary, WaitQuery

MAX_STREAMS = 20  # each open stream holds a server thread
KEEPALIVE_SECONDS = 15.0  # a comment this often keeps proxies from closing an idle stream
STREAMS_KEY = "mail_gateway.outbox_streams"


@docs.operation("Wait for a kept message matching a search; answers at once if one is kept already",
                operation_id="wait_outbox_message", tag="outbox", query=WaitQuery, responses={200: MessageSummary},
                problems=(400, 401, 403, 404))
def wait() -> dict[str, Any]:
    query = parse_query(WaitQuery)
    terms, view = state.terms(query.query), state.viewer(query.owner)
    outbox = state.current_outbox()
    deadline = time.monotonic() + query.timeout
    sequence = outbox.keeping.sequence()  # before looking, so a message kept meanwhile wakes the wait below
    while True:
        _, found = state.matching(outbox, view, terms, 0, 1)
        if found:
            return views.listed(found[0], outbox.keeping)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Problem(404, "No matching message", f"No kept message matched the query {query.query!r} within "
                          f"{query.timeout} s; check the query, or wait longer (timeout, at most 60).",
                          "no-matching-message", [FieldError("query", "no kept message matched it in time")])
        changes = outbox.keeping.changes_after(sequence, remaining)
        if changes:
            sequence = changes[-1].sequence


def _event(outbox: KeptMail, view: state.View, change: Change, seen: set[str]) -> str | None:
    """One change as an SSE event, or None for one this view must not see."""
    data: Any = change.data
    if change.kind == "message":
        found = outbox.summary(change.data["id"])
        if found is None or not state.visible(outbox, view, found.id):
            return None
        seen.add(found.id)
        data = views.listed(found, outbox.keeping)
    elif change.kind == "deleted":
        ids = [i for i in change.data["ids"] if view.owner is None or i in seen]
        if not ids:
            return None
        data = {"ids": ids}
    elif change.kind == "read" and not state.visible(outbox, view, change.data["id"]):
        return None
    return f"event: {change.kind}\ndata: {json.dumps(data)}\n\n"


def _stream(outbox: KeptMail, view: state.View, sequence: int, seen: set[str]) -> Iterator[str]:
    yield ": connected\n\n"
    while True:
        changes = outbox.keeping.changes_after(sequence, KEEPALIVE_SECONDS)
        if not changes:
            yield ": keep-alive\n\n"
            continue
        sequence = changes[-1].sequence
        for change in changes:
            event = _event(outbox, view, change, seen)
            if event is not None:
                yield event


live_blueprint = docs.for_browsers(Blueprint("outbox_page_live", __name__))


@live_blueprint.get("/outbox/events")
def events() -> Response:
    """The outbox's changes as Server-Sent Events: message, deleted, cleared and read."""
    outbox, view = state.current_outbox(), state.viewer()
    streams = current_app.extensions.setdefault(STREAMS_KEY, threading.BoundedSemaphore(MAX_STREAMS))
    if not streams.acquire(blocking=False):
        raise Problem(503, "Too many event streams", f"{MAX_STREAMS} event streams are open already; close a "
                      "page showing the outbox, or reload later.", "too-many-streams", headers={"Retry-After": "5"})
    # A page is open and its user may search next: make the search index now, in the background (only here, so
    # that a program listing the outbox through the API still reads just the page it asks for).
    state.warm_search(outbox)
    sequence = outbox.keeping.sequence()
    seen = set() if view.owner is None else {i for i in outbox.kept_ids() if state.visible(outbox, view, i)}
    response = Response(_stream(outbox, view, sequence, seen), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                                 "X-Content-Type-Options": "nosniff"})
    response.call_on_close(streams.release)  # when the client goes or the server closes the response
    return response
