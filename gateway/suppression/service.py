"""``Suppressions``: the store's suppression list as the sender uses it (``sending.suppress.SuppressionList``),
and which SMTP replies put a recipient on it.

Only a permanent refusal that says the mailbox does not exist adds one (a ``hard-bounce``): the enhanced status
codes of RFC 3463 for a bad or disabled address. A 5.7.x policy refusal or a 5.3.4 message too big is about the
message or the sender, not the address, and adds no one.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mail_gateway.errors import StoreUnavailableError
from mail_gateway.mail.result import RecipientResult
from mail_gateway.sending.log import Outcome
from mail_gateway.settings import GatewaySettings
from mail_gateway.store.database import Store

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

log = logging.getLogger("mail_gateway.suppression")
# Bad address (5.1.0 other, 5.1.1 no such mailbox, 5.1.2 no such domain, 5.1.3 bad syntax, 5.1.10 null MX) and
# mailbox disabled (5.2.1).
NO_SUCH_MAILBOX = frozenset({"5.1.0", "5.1.1", "5.1.2", "5.1.3", "5.1.10", "5.2.1"})
_ENHANCED = re.compile(r"\s*(5)\.([0-9]{1,3})\.([0-9]{1,3})(?![0-9.])")
# How long a direct gateway trusts that no SQLite file of the list exists before it looks again. A look is a
# stat, a system call that lets go of the GIL; under the threaded HTTP server taking the GIL back cost 40–70 µs a
# message (7–11 % of a memory-backend request), far more than the look itself.
FILE_LOOK_SECONDS = 1.0
# A direct gateway keeps a copy of the list, read again once it is LIST_FRESH_SECONDS old or this process changed
# the store: under the threaded HTTP server a read per message cost a quarter of the throughput (970 against
# 1,340 µs of server CPU per message). Another process's change holds here within that time, as a template's
# does. A list longer than LIST_COPY_MAX is read per message instead, and its length looked at again each
# LONG_LIST_SECONDS.
LIST_FRESH_SECONDS = 1.0
LIST_COPY_MAX = 10_000
LONG_LIST_SECONDS = 60.0


@dataclass(frozen=True)
class _ListCopy:
    entries: dict[str, float | None] | None  # None: the list is too long to copy
    until: float  # by ``Suppressions.clock``
    changes: tuple[int, int]  # the changes to the list this process knew of before it was read


def no_such_mailbox(code: int | None, text: str | None) -> bool:
    """Whether a reply is a permanent refusal saying the recipient's mailbox does not exist."""
    if code is None or not 500 <= code < 600 or not text:
        return False
    found = _ENHANCED.match(text)
    return found is not None and f"5.{int(found[2])}.{int(found[3])}" in NO_SUCH_MAILBOX


def hard_bounces(outcome: Outcome) -> list[RecipientResult]:
    return [r for r in outcome.recipients if r.status == "rejected" and no_such_mailbox(r.code, r.reason)]


def automatic_expiry(settings: GatewaySettings, now: float) -> float | None:
    """When an automatic entry (a hard bounce, from an SMTP reply or a DSN) added ``now`` ends: None for never."""
    return now + settings.gateway_suppression_expiry if settings.gateway_suppression_expiry else None


class Suppressions:
    def __init__(self, store: Store, settings: GatewaySettings) -> None:
        self.store = store
        self.settings = settings
        # Decided once: without the queue extra no list is ever kept. An SQLite file not made yet is looked for
        # until it is (by this process, the CLI or another gateway sharing it), at most once a FILE_LOOK_SECONDS.
        self._never = not store.available
        self._file = store.path
        self._look_again_at = 0.0
        self._copy: _ListCopy | None = None
        self.clock = time.monotonic

    def _no_list_yet(self) -> bool:
        """No list can hold anyone: no queue extra, or no SQLite file yet (direct delivery makes none until it
        needs one)."""
        if self._never:
            return True
        if self._file is None or self.store.opened:
            return False
        now = self.clock()
        if now < self._look_again_at:
            return True
        if os.path.exists(self._file):
            return False
        self._look_again_at = now + FILE_LOOK_SECONDS
        return True

    def __repr__(self) -> str:
        return f"<Suppressions {self.store.describe()}>"

    def suppressed(self, addresses: tuple[str, ...] | list[str]) -> set[str]:
        if self._no_list_yet():
            return set()
        from mail_gateway.store import suppressions

        now = self.store.clock()
        entries = self._list_copy()
        if entries is not None:
            return suppressions.among(entries, addresses, now=now)
        return self.store.read(lambda conn: suppressions.suppressed(conn, addresses, now=now))

    def _list_copy(self) -> dict[str, float | None] | None:
        """The list's entries as last read, read again when stale; None when it is too long to copy."""
        from mail_gateway.store import suppressions

        # Moves when this process changed the list, or its store's file was recreated.
        changes = (self.store.generation, self.store.writer.changed[suppressions.TABLE])
        moment, copy = self.clock(), self._copy
        # A list too long to copy is read per message, exactly: only its length is looked at again, now and then.
        if copy is not None and moment < copy.until and (changes == copy.changes or copy.entries is None):
            return copy.entries
        entries = self.store.read(lambda conn: suppressions.live_entries(conn, now=self.store.clock(),
                                                                         limit=LIST_COPY_MAX))
        fresh = LIST_FRESH_SECONDS if entries is not None else LONG_LIST_SECONDS
        self._copy = _ListCopy(entries, moment + fresh, changes)
        return entries

    def learn(self, outcome: Outcome, message_id: str | None) -> None:
        bounced = hard_bounces(outcome)
        if not bounced or not self.store.available:  # without the queue extra no list is kept
            return
        from mail_gateway.store import suppressions

        now = self.store.clock()
        expires_at = automatic_expiry(self.settings, now)

        def add(conn: Connection) -> None:
            # Expired entries are ignored by every read; they are dropped here, when the list changes anyway.
            suppressions.purge_expired(conn, now)
            for r in bounced:
                suppressions.add(conn, r.email, "hard-bounce", source="smtp", message_id=message_id,
                                 detail=f"{r.code} {r.reason}", expires_at=expires_at, now=now)

        try:
            self.store.write(add)
        except StoreUnavailableError as exc:  # the delivery's outcome stands; the next refusal adds them
            log.error("could not add %d hard-bounced recipients to the suppression list: %s", len(bounced), exc)


def unsubscribe(conn: Connection, recipient: str, webhook_url: str | None, *, via: str) -> None:
    """Suppress ``recipient`` at their own request (reason ``unsubscribe``) and tell the webhook, once: a second
    request (a second press, a client's retry, the mailto after the one-click) changes nothing."""
    from mail_gateway.store import suppressions
    from mail_gateway.suppression.events import record_event

    entry = suppressions.get(conn, recipient)
    if entry is not None and entry.reason == "unsubscribe":
        return
    suppressions.add(conn, recipient, "unsubscribe", source="unsubscribe", detail=via)
    record_event(conn, event_type="unsubscribed", message_id=None, recipient=recipient,
                 reject_reason="unsubscribed", webhook_url=webhook_url)
