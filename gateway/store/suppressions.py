"""The suppression list in the store: addresses nothing is sent to, each with why, what caused it and until when.

Addresses are compared as mailboxes, not as strings: each row's key is ``recipient_key(envelope_address(a))``,
so ``Bob@EXAMPLE.com`` and ``Bob@example.com`` are one entry, and so are an IDN domain and its A-label form. Every
function takes the connection of its caller's transaction (``Store.read`` or ``Store.write``).
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, insert, literal, or_, select, update
from sqlalchemy import delete as delete_rows
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import BindParameter

from mail_gateway.mail.addresses import envelope_address, header_addresses, recipient_key
from mail_gateway.mail.rfc5322 import check_header_text
from mail_gateway.store.messages import ascii_lowered
from mail_gateway.store.schema import suppressions as table
from mail_gateway.store.writer import note_change

TABLE = table.name

REASONS = ("hard-bounce", "complaint", "unsubscribe", "manual")
SOURCES = ("smtp", "dsn", "unsubscribe", "api")


@dataclass(frozen=True)
class Entry:
    address: str  # the mailbox key
    email: str  # as it was given
    reason: str
    source: str
    message_id: str | None
    detail: str | None
    created_at: float
    expires_at: float | None


def key(address: str) -> str:
    """The mailbox an address names; ``InvalidMessageError`` when it is not an address. Its local part in NFC, as
    a send writes it (RFC 6532 3.1): ``a\u0301`` and ``\u00e1`` are one mailbox."""
    return recipient_key(envelope_address(unicodedata.normalize("NFC", address)))


def _keys(address: str) -> list[str]:
    """``key(address)``, and the key an entry listed before keys were in NFC has, where the two differ: such an
    entry still holds, and can still be removed."""
    mailbox, as_given = key(address), recipient_key(envelope_address(address))
    return [mailbox] if as_given == mailbox else [mailbox, as_given]


def check_listable(address: str) -> None:
    """``ValueError`` unless ``address`` is one bare address, the key of which is the key of the mailbox it names:
    with a name, <>, a comment, a group, spaces or a control character, or as a list, it would be kept under a
    key no recipient's ever equals, and the mailbox it names would still be sent to."""
    check_header_text(address)
    found = header_addresses(address)
    if not found or len(found) != 1 or "@" not in found[0][1]:
        raise ValueError("is not one email address; give one such as 'someone@example.com'")
    spec = found[0][1]
    if key(spec) != key(address):
        raise ValueError(f"names the mailbox {spec!r}; give that address alone")


def _later(old: float | None, new: float | None) -> float | None:
    """Of two expiries the later one, None (never) being the latest: an automatic entry never shortens a
    permanent one, such as an unsubscribe."""
    return None if old is None or new is None else max(old, new)


def add(conn: Connection, address: str, reason: str, *, source: str, message_id: str | None = None,
        detail: str | None = None, expires_at: float | None = None, now: float | None = None) -> None:
    """Put ``address`` on the list, or renew its entry (the latest cause, the later expiry)."""
    if reason not in REASONS or source not in SOURCES:
        raise ValueError(f"reason must be one of {REASONS} and source one of {SOURCES}")
    mailbox, at = key(address), time.time() if now is None else now
    note_change(conn, TABLE)
    values = {"email": address, "reason": reason, "source": source, "message_id": message_id, "detail": detail,
              "created_at": at}
    old = conn.execute(select(table.c.expires_at).where(table.c.address == mailbox)).first()
    if old is not None:
        conn.execute(update(table).where(table.c.address == mailbox)
                     .values(**values, expires_at=_later(old.expires_at, expires_at)))
        return
    try:
        with conn.begin_nested():
            conn.execute(insert(table).values(address=mailbox, expires_at=expires_at, **values))
    except IntegrityError:  # another process added it first, on a server database
        conn.execute(update(table).where(table.c.address == mailbox).values(**values))


def remove(conn: Connection, address: str) -> bool:
    note_change(conn, TABLE)
    return conn.execute(delete_rows(table).where(table.c.address.in_(_keys(address)))).rowcount > 0


def _live(now: float | BindParameter[float]) -> object:
    return or_(table.c.expires_at.is_(None), table.c.expires_at > now)


def _by_mailbox(addresses: Iterable[str]) -> dict[str, list[str]]:
    """``addresses``, as given, under their mailbox keys; what is not an address is left out (nothing can be on
    the list for it)."""
    keys: dict[str, list[str]] = {}
    for address in addresses:
        try:
            for mailbox in _keys(address):
                keys.setdefault(mailbox, []).append(address)
        except ValueError:
            continue
    return keys


def suppressed(conn: Connection, addresses: Iterable[str], *, now: float | None = None) -> set[str]:
    """Those of ``addresses``, as given, whose mailbox is on the list and not expired."""
    keys = _by_mailbox(addresses)
    if not keys:
        return set()
    at = time.time() if now is None else now
    if len(keys) == 1:
        found = conn.execute(_ONE_SUPPRESSED, {"key": next(iter(keys)), "now": at})
    else:
        found = conn.execute(_SUPPRESSED, {"keys": list(keys), "now": at})
    return {address for row in found for address in keys[row.address]}


# Built once: every message asks the same question, and building the statement (and its cache key) each time
# cost more than running it, on every queued accept. Most messages have one recipient, and an IN list is
# compiled again for each execution (its parameters are expanded into the SQL), which cost a third of the read.
_SUPPRESSED = select(table.c.address).where(and_(table.c.address.in_(bindparam("keys", expanding=True)),
                                                 _live(bindparam("now"))))
_ONE_SUPPRESSED = select(table.c.address).where(and_(table.c.address == bindparam("key"), _live(bindparam("now"))))


def live_entries(conn: Connection, *, now: float, limit: int) -> dict[str, float | None] | None:
    """Every entry in force, its key and expiry; None when there are more than ``limit``."""
    rows = conn.execute(select(table.c.address, table.c.expires_at).where(_live(now)).limit(limit + 1)).all()
    return None if len(rows) > limit else {row.address: row.expires_at for row in rows}


def among(entries: dict[str, float | None], addresses: Iterable[str], *, now: float) -> set[str]:
    """Those of ``addresses``, as given, that ``entries`` (from ``live_entries``) holds in force at ``now``."""
    return {address for mailbox, given in _by_mailbox(addresses).items()
            if mailbox in entries and ((expires_at := entries[mailbox]) is None or expires_at > now)
            for address in given}


def get(conn: Connection, address: str, *, now: float | None = None) -> Entry | None:
    at = time.time() if now is None else now
    row = conn.execute(select(table).where(and_(table.c.address.in_(_keys(address)), _live(at)))).first()
    return None if row is None else Entry(**row._mapping)


def list_entries(conn: Connection, *, contains: str | None = None, reason: str | None = None, limit: int = 100,
                 start: int = 0, now: float | None = None) -> list[Entry]:
    """Entries not expired, by mailbox, skipping ``start`` of them; ``contains``: a substring of the address
    (whatever the case of its ASCII letters)."""
    at = time.time() if now is None else now
    query = select(table).where(_live(at))
    if contains:
        # Both sides lowered by the database, ASCII alone, so that both engines find the same.
        wanted = ascii_lowered(conn, literal(contains.replace("/", "//").replace("%", "/%").replace("_", "/_")))
        query = query.where(ascii_lowered(conn, table.c.address).contains(wanted, escape="/") |
                            ascii_lowered(conn, table.c.email).contains(wanted, escape="/"))
    if reason is not None:
        query = query.where(table.c.reason == reason)
    rows = conn.execute(query.order_by(table.c.address).limit(limit).offset(start))
    return [Entry(**row._mapping) for row in rows]


def purge_expired(conn: Connection, now: float) -> int:
    note_change(conn, TABLE)
    return conn.execute(delete_rows(table).where(table.c.expires_at <= now)).rowcount
