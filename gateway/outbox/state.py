"""Whose mail a request sees, which kept messages match its search, and what the retention bounds dropped.

With ``GATEWAY_API_KEYS`` naming keys (``name:key``), each kept message records the key that sent it, and a named
key sees only its own messages, on the page as in the API; a key named in ``GATEWAY_ADMIN_KEYS`` sees every one
and may look at one key's (``?owner=``). Unnamed keys, and an outbox without keys, see every message as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import g

from mail_gateway.backends.kept import KeptMail, KeptMessage, KeptSummary, kept_mail_of
from mail_gateway.errors import FieldError
from mail_gateway.http.problems import Problem
from mail_gateway.http.query import invalid_query
from mail_gateway.outbox import search
from mail_gateway.runtime import Runtime


def current_outbox() -> KeptMail:
    backend = Runtime.of().backend
    outbox = kept_mail_of(backend)
    if outbox is None:
        raise Problem(
            404, "No outbox",
            f"The {backend.name} backend does not keep the messages it sends, so there is nothing to show here; "
            "set MAIL_BACKEND=memory, or MAIL_BACKEND=file with MAIL_FILE_PATH, to keep them "
            "(the console backend keeps a copy with MAIL_CONSOLE_KEEP=true, the default in development).",
            "no-outbox",
        )
    if outbox.keeping.max_age is not None:
        # Listing the ids forgets the messages past GATEWAY_OUTBOX_MAX_AGE: first, so that no answer shows one
        # (a message, its source, a list, or the list's ETag, which a poller would be answered 304 with).
        outbox.kept_ids()
    return outbox


def kept_or_404(message_id: str) -> KeptMessage:
    """The kept message, if this request may see it (a named key sees only its own: see ``state``)."""
    outbox = current_outbox()
    kept = outbox.get_kept(message_id)
    if kept is None or not visible(outbox, viewer(), message_id):
        raise Problem(404, "No such message", f"No kept message has the id {message_id!r}; it may have been "
                      "deleted or, with the memory backend, dropped as the oldest beyond MAIL_MEMORY_MAX_MESSAGES.",
                      "no-such-message")
    return kept


@dataclass(frozen=True)
class View:
    """What one request may see: every message (``owner`` None) or one owner's."""

    owner: str | None
    admin: bool


def viewer(asked_owner: str | None = None) -> View:
    """The request's view of the outbox; ``asked_owner`` (``?owner=``) is an admin key's choice only."""
    name = g.get("api_key_name")  # None: no keys, or an unnamed key, which sees every message as before
    admin = name is None or name in Runtime.of().settings.admin_key_names
    if asked_owner is not None and not admin:
        raise Problem(403, "Owner not allowed", "Only a key named in GATEWAY_ADMIN_KEYS may choose whose mail to "
                      "see; leave out the owner parameter to see this key's own mail.", "owner-not-allowed",
                      [FieldError("owner", "allowed for admin keys only; leave it out")])
    return View(asked_owner if admin else name, admin)


def visible(outbox: KeptMail, view: View, message_id: str) -> bool:
    return view.owner is None or outbox.keeping.owner(message_id) == view.owner


def terms(query: str | None) -> list[search.Term]:
    try:
        return search.parse(query or "")
    except search.SearchSyntaxError as exc:
        raise invalid_query([FieldError("query", str(exc))]) from None


_warming_lock = threading.Lock()
_warming: dict[int, threading.Thread] = {}  # by id(outbox): the one indexing thread at work on it


def warm_search(outbox: KeptMail) -> threading.Thread | None:
    """Start making every kept message's search index in the background, when a page opens its event stream:
    the index is made lazily so that sends never pay for it, and without this the first search typed into the
    page would wait while thousands of messages are read. None when a thread is already at it."""
    with _warming_lock:
        if id(outbox) in _warming:
            return None
        thread = threading.Thread(target=_index_all, args=(outbox,), name="outbox-search-index", daemon=True)
        _warming[id(outbox)] = thread
    thread.start()
    return thread


def _index_all(outbox: KeptMail) -> None:
    try:
        for message_id in outbox.kept_ids():
            try:
                outbox.search_index(message_id)
            except OSError:  # a file deleted or unreadable meanwhile: the search that wants it will say so
                continue
    finally:
        with _warming_lock:
            _warming.pop(id(outbox), None)


def _after_warming(outbox: KeptMail) -> None:
    """A search waits for an indexing thread at work on the same outbox, which is making what the search needs,
    rather than make each index a second time beside it."""
    with _warming_lock:
        thread = _warming.get(id(outbox))
    if thread is not None:
        thread.join()


def matching(outbox: KeptMail, view: View, found_terms: list[search.Term], start: int,
             limit: int, keep: Callable[[KeptSummary], bool] | None = None) -> tuple[int, list[KeptSummary]]:
    """How many kept messages the view sees that match, and the page of them from ``start``, newest first.
    ``keep``, when given, is one more test each summary must pass (the old field filters)."""
    ids = outbox.kept_ids()
    if view.owner is not None:
        ids = [message_id for message_id in ids if outbox.keeping.owner(message_id) == view.owner]
    if found_terms:  # each message's search index, not its summary: only the page shown is read in full
        _after_warming(outbox)
        state = outbox.keeping
        indexes = (outbox.search_index(message_id) for message_id in ids)
        ids = [i.id for i in indexes if i is not None and search.matches(found_terms, i, state.is_read(i.id))]
    if keep is None:
        return len(ids), [s for s in map(outbox.summary, ids[start:start + limit]) if s is not None]
    found = [s for s in map(outbox.summary, ids) if s is not None and keep(s)]
    return len(found), found[start:start + limit]


def retention(outbox: KeptMail) -> dict[str, Any]:
    kept = outbox.keeping.retention()
    bounds = []
    if kept.keep is not None:
        bounds.append(f"keeps the newest {kept.keep} (MAIL_MEMORY_MAX_MESSAGES)")
    if kept.max_age_seconds is not None:
        bounds.append(f"drops those older than {kept.max_age_seconds} s (GATEWAY_OUTBOX_MAX_AGE)")
    note = None
    if kept.dropped:
        note = f"{kept.dropped} message(s) were dropped: the outbox {' and '.join(bounds) or 'has bounds'}."
    return {"keep": kept.keep, "max_age_seconds": kept.max_age_seconds, "dropped": kept.dropped,
            "dropped_note": note}


def owners(outbox: KeptMail) -> list[str]:
    names = {outbox.keeping.owner(message_id) for message_id in outbox.kept_ids()}
    return sorted(name for name in names if name is not None and ":" not in name)
