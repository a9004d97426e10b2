"""Idempotency keys in the store: claim a key, record each message's outcome as it happens, keep the response.

A key is claimed (*in flight*) in its own committed transaction before anything is sent, with a lease that its
process renews while it lives (``http.keyring.Keyring``). A key whose lease ran out belongs to a request whose
process died: it is *abandoned*, and the next request with it is answered from what the store knows — the response
if it was recorded, else each message's recorded outcome — never "in flight, retry later" for ever. A queued request
writes its messages and its response in one transaction, so an abandoned queued key with nothing recorded sent
nothing and is simply taken over.

Each claim writes a token of its own (``holder``), and a request finishes or releases its key only while the key
still holds its token: a request that was alive after all (its lease ran out while the store refused the renewals)
finds its key taken over by the retry and writes nothing, rather than both writing their messages (sent twice) or
the late one overwriting the answer the retry was given.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from mail_gateway.store.schema import idempotency_keys as keys
from mail_gateway.store.schema import request_outcomes as outcomes

TTL_SECONDS = 24 * 60 * 60


@dataclass(frozen=True)
class StoredResponse:
    status: int
    mimetype: str
    body: bytes


@dataclass(frozen=True)
class Begun:
    """What ``begin`` found: nothing (go ahead), a response to replay, a conflict, or an abandoned request and
    the outcomes it recorded (position -> batch result item)."""

    replay: StoredResponse | None = None
    conflict: str | None = None  # "in-flight" or "mismatch"
    abandoned: dict[int, dict[str, Any]] | None = None
    holder: str | None = field(default=None, compare=False)  # the claim's token, when the key was claimed


def new_holder() -> str:
    """A claim's token. Made by the caller, outside the change: the store's writer may run a change twice."""
    return secrets.token_hex(16)


def begin(conn: Connection, key: str, fingerprint: str, *, mode: str, now: float, lease: float,
          ttl: float = TTL_SECONDS, holder: str | None = None) -> Begun:
    """Claim ``key`` for a request with ``fingerprint``, atomically across threads and processes, writing
    ``holder`` (``new_holder()``) as the claim's token."""
    purge_expired(conn, now, ttl)
    # Locked: two processes taking over one abandoned key must take turns (the second then sees it leased).
    row = conn.execute(select(keys.c.fingerprint, keys.c.status, keys.c.mimetype, keys.c.body, keys.c.mode,
                              keys.c.lease_until).where(keys.c.key == key).with_for_update()).first()
    if row is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(keys).values(key=key, fingerprint=fingerprint, created_at=now, mode=mode,
                                                 lease_until=now + lease, holder=holder))
        except IntegrityError:  # another process inserted it first (a server database lets both read "none")
            return Begun(conflict="in-flight")
        return Begun(holder=holder)
    if row.fingerprint != fingerprint:
        return Begun(conflict="mismatch")
    if row.status is not None:
        return Begun(replay=StoredResponse(row.status, row.mimetype, bytes(row.body)))
    if row.lease_until >= now:
        return Begun(conflict="in-flight")
    recorded = {r.position: json.loads(r.item) for r in conn.execute(
        select(outcomes.c.position, outcomes.c.item).where(outcomes.c.key == key))}
    if row.mode == "queued" and not recorded:
        # Its messages would have been written with its response, in one transaction: it sent nothing.
        conn.execute(update(keys).where(keys.c.key == key).values(lease_until=now + lease, mode=mode, holder=holder))
        return Begun(holder=holder)
    conn.execute(update(keys).where(keys.c.key == key).values(holder=holder))  # answered now, by this request
    return Begun(abandoned=recorded, holder=holder)


def holds(conn: Connection, key: str, holder: str | None) -> bool:
    """Whether ``key`` is still the claim ``holder`` made (always, for None), locked until the transaction ends so
    that no retry takes it over before this one writes (SQLite's writes take turns anyway)."""
    if holder is None:
        return True
    found = conn.execute(select(keys.c.holder).where(keys.c.key == key, keys.c.status.is_(None)).with_for_update())
    return found.scalar() == holder


def record(conn: Connection, key: str, items: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """Keep the outcome of each message of a keyed request, by its position in the request."""
    conn.execute(insert(outcomes), [{"key": key, "position": p, "item": json.dumps(i)} for p, i in items])


def finish(conn: Connection, key: str, response: StoredResponse) -> None:
    """Record the response the first request got; from now on it is replayed."""
    conn.execute(update(keys).where(keys.c.key == key).values(status=response.status, mimetype=response.mimetype,
                                                               body=response.body))
    conn.execute(delete(outcomes).where(outcomes.c.key == key))


def release(conn: Connection, key: str, holder: str | None = None) -> None:
    """Forget ``key`` (while it is ``holder``'s claim): nothing was sent, so a retry must really try again."""
    if not holds(conn, key, holder):
        return
    conn.execute(delete(outcomes).where(outcomes.c.key == key))
    conn.execute(delete(keys).where(keys.c.key == key, keys.c.status.is_(None)))


def renew(conn: Connection, held: Sequence[str], until: float) -> None:
    """Extend the lease of the keys this process still works on."""
    conn.execute(update(keys).where(keys.c.key.in_(list(held)), keys.c.status.is_(None)).values(lease_until=until))


def purge_expired(conn: Connection, now: float, ttl: float = TTL_SECONDS) -> int:
    # Every expired key goes, not only the one asked about, so the store keeps about a day's keys.
    expired = select(keys.c.key).where(keys.c.created_at < now - ttl)
    conn.execute(delete(outcomes).where(outcomes.c.key.in_(expired)))
    return conn.execute(delete(keys).where(keys.c.created_at < now - ttl)).rowcount
