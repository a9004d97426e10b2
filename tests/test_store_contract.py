"""One suite every store passes: an embedded SQLite file and a PostgreSQL server (a private cluster the suite
starts), through the store's own operations — enqueue, claims under leases, expiry and reclaim, outcomes,
retry and cancel, statuses, webhook rows, idempotency keys and their abandonment. Each store in the tests is its
own ``Store`` object with its own writer and connections, as separate processes have."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import event, inspect, text, update

from mail_gateway.cli import main
from mail_gateway.errors import NoSuchQueuedMessageError, NothingPendingError, StoreSchemaError
from mail_gateway.store import (
    actions,
    bounces,
    claims,
    inbound,
    keys,
    messages,
    recording,
    schema,
    suppressions,
    templates,
    webhooks,
)
from mail_gateway.store.claims import Attempt, RecipientUpdate
from mail_gateway.store.database import Store
from mail_gateway.store.keys import StoredResponse
from mail_gateway.suppression.events import record_event

T0 = 1_000_000.0
HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture
def stores(store_url: str) -> Iterator[list[Store]]:
    """Stores on the same database; the first one opened (created or checked) as at start-up."""
    opened: list[Store] = []

    def new() -> Store:
        store = Store(store_url)
        opened.append(store.open())
        return store

    opened_list = [new(), new()]
    yield opened_list
    for store in opened:
        store.close()


@pytest.fixture
def store(stores: list[Store]) -> Store:
    return stores[0]


def put(store: Store, *recipients: str, at: float = T0, send_at: float | None = None, data: bytes = b"x",
        owner: str | None = None) -> str:
    new = messages.NewMessage(messages.new_id(), f"<{messages.new_id()}@example.com>", "app@example.com",
                              recipients or ("a@example.com",), data, "http", at, send_at, at + 1000, owner)
    store.write(lambda conn: messages.enqueue(conn, [new]))
    return new.id


def claim(store: Store, now: float, limit: int = 10, lease: float = 30) -> list[claims.Claimed]:
    return store.write(lambda conn: claims.claim(conn, now=now, limit=limit, lease=lease))


def record(store: Store, claimed: claims.Claimed, *updates: RecipientUpdate, at: float = T0 + 1,
           hook: str | None = None) -> bool:
    attempt = Attempt(claimed, at, "127.0.0.1:25", updates)
    return store.write(lambda conn: recording.record_all(conn, [attempt], hook)) == 1


def status(store: Store, message_id: str, now: float = T0) -> dict:
    return store.read(lambda conn: messages.get_message(conn, message_id, now))


def delivered(position: int = 0, email: str = "a@example.com") -> RecipientUpdate:
    return RecipientUpdate(position, email, "delivered", "delivered", 250, "ok")


def test_enqueued_messages_are_shown_and_listed_with_their_recipients(store) -> None:
    first = put(store, "a@example.com", "b@example.com", data=b"body bytes")
    later = put(store, at=T0 + 1, send_at=T0 + 100)
    found = status(store, first)
    assert found["status"] == "queued" and found["size"] == len(b"body bytes") and found["events"] == []
    assert [(r["email"], r["status"], r["attempts"]) for r in found["recipients"]] == [
        ("a@example.com", "queued", 0), ("b@example.com", "queued", 0)]
    assert status(store, later)["status"] == "scheduled"
    assert status(store, later, now=T0 + 100)["status"] == "queued"  # its time has come
    total, page = store.read(lambda conn: messages.list_messages(conn, status=None, limit=10, start=0, now=T0))
    assert total == 2 and [m["id"] for m in page] == [first, later]
    total, page = store.read(lambda conn: messages.list_messages(conn, status="scheduled", limit=10, start=0,
                                                                 now=T0))
    assert total == 1 and page[0]["id"] == later
    assert status(store, "no-such-id") is None
    summary = store.read(messages.pending_summary)
    assert summary["counts"] == {"queued": 1, "scheduled": 1} and summary["oldest_pending"] == T0


def test_claims_take_due_messages_oldest_first_under_a_lease(store) -> None:
    ids = [put(store, at=T0 + n) for n in range(3)]
    put(store, at=T0, send_at=T0 + 500)  # not due yet
    got = claim(store, now=T0 + 10, limit=2)
    assert [c.id for c in got] == ids[:2] and got[0].recipients == ((0, "a@example.com", 0),)
    assert [c.id for c in claim(store, now=T0 + 10)] == [ids[2]]
    assert claim(store, now=T0 + 20) == []  # leased, nothing else due
    again = claim(store, now=T0 + 41)  # the first two leases (30 s from T0 + 10) have ended
    assert sorted(c.id for c in again) == sorted(ids)
    assert store.read(lambda conn: claims.body(conn, ids[0])) == b"x"


def test_renew_keeps_a_claim_and_release_hands_it_back(store) -> None:
    message_id = put(store)
    [held] = claim(store, now=T0)
    store.write(lambda conn: claims.renew(conn, [held], T0 + 100))
    assert claim(store, now=T0 + 60) == []
    store.write(lambda conn: claims.release(conn, [held], T0 + 60))
    [again] = claim(store, now=T0 + 60)
    assert again.id == message_id and again.token != held.token
    assert not any(e["type"] == "unknown" for e in status(store, message_id)["events"])  # released: never tried


def test_a_claim_whose_lease_ended_is_taken_again_and_the_attempt_recorded_as_unknown(store) -> None:
    message_id = put(store)
    [dead] = claim(store, now=T0, lease=5)  # its worker dies: the lease is never renewed
    [taken] = claim(store, now=T0 + 6)
    events = status(store, message_id)["events"]
    assert [(e["type"], e["recipient"]) for e in events] == [("unknown", "a@example.com")]
    assert "lease" in events[0]["text"]
    assert not record(store, dead, delivered())  # the dead claim's outcome is stale: only logged
    assert record(store, taken, delivered())
    assert status(store, message_id)["status"] == "delivered"


def test_a_message_canceled_while_its_stalled_worker_delivered_it_is_recorded_delivered(store) -> None:
    message_id = put(store, "a@example.com", "b@example.com", "c@example.com")
    [stalled] = claim(store, now=T0, lease=5)  # its worker stalls past the lease, and no other worker runs
    assert store.write(lambda conn: actions.cancel(conn, message_id, T0 + 6, HOOK)) == 3  # presumed dead
    # It wakes: the upstream took the message for a, refused b and had not been asked for c yet.
    assert not record(store, stalled, delivered(0), RecipientUpdate(1, "b@example.com", "bounced", "bounced", 550,
                                                                    "no"), at=T0 + 7, hook=HOOK)
    found = status(store, message_id)
    assert [(r["status"], r["code"]) for r in found["recipients"]] == [("delivered", 250), ("canceled", None),
                                                                       ("canceled", None)]
    assert found["status"] == "partial"
    rows = store.read(webhooks.list_deliveries)
    assert sorted(r["type"] for r in rows) == ["message.canceled"] * 3 + ["message.delivered"]
    assert claim(store, now=T0 + 10_000) == []


def test_outcomes_sum_up_per_recipient_and_drop_the_body_when_final(store) -> None:
    message_id = put(store, "a@example.com", "b@example.com", "c@example.com")
    [held] = claim(store, now=T0)
    assert record(store, held, delivered(0), RecipientUpdate(1, "b@example.com", "bounced", "bounced", 550, "no"),
                  RecipientUpdate(2, "c@example.com", "deferred", "deferred", 451, "later", T0 + 50))
    found = status(store, message_id)
    assert found["status"] == "deferred" and found["attempts"] == 1
    assert [(r["status"], r["code"]) for r in found["recipients"]] == [("delivered", 250), ("bounced", 550),
                                                                       ("deferred", 451)]
    assert claim(store, now=T0 + 49) == []
    [retry] = claim(store, now=T0 + 50)
    assert retry.recipients == ((2, "c@example.com", 1),)  # only the pending one, its attempts so far
    assert record(store, retry, delivered(2, "c@example.com"), at=T0 + 51)
    assert status(store, message_id)["status"] == "partial"
    assert store.read(lambda conn: claims.body(conn, message_id)) is None
    assert claim(store, now=T0 + 10_000) == []
    assert store.write(lambda conn: claims.purge_finished(conn, T0 + 52)) == 1
    assert status(store, message_id) is None


def test_retry_now_and_cancel(store) -> None:
    later = put(store, send_at=T0 + 500)
    assert store.write(lambda conn: actions.retry_now(conn, later, T0 + 1)) == 1
    assert [c.id for c in claim(store, now=T0 + 1)] == [later]
    other = put(store, "a@example.com", "b@example.com", send_at=T0 + 500)
    assert store.write(lambda conn: actions.cancel(conn, other, T0 + 2, HOOK)) == 2
    found = status(store, other)
    assert found["status"] == "canceled" and {r["status"] for r in found["recipients"]} == {"canceled"}
    with pytest.raises(NothingPendingError):
        store.write(lambda conn: actions.cancel(conn, other, T0 + 3, None))
    with pytest.raises(NothingPendingError):
        store.write(lambda conn: actions.retry_now(conn, other, T0 + 3))
    with pytest.raises(NoSuchQueuedMessageError):
        store.write(lambda conn: actions.retry_now(conn, "nope", T0 + 3))
    rows = store.read(webhooks.list_deliveries)
    assert [r["type"] for r in rows] == ["message.canceled", "message.canceled"]
    assert put(store, send_at=T0 + 900) and store.write(lambda conn: actions.retry_all(conn, T0 + 4)) == 1


def test_webhook_rows_are_written_with_outcomes_claimed_settled_and_stopped_by_410(store) -> None:
    message_id = put(store)
    [held] = claim(store, now=T0)
    record(store, held, delivered(), hook=HOOK)
    [due] = store.write(lambda conn: webhooks.claim(conn, now=T0 + 2, limit=10, lease=30))
    payload = json.loads(due.payload)
    assert payload["type"] == "message.delivered" and payload["data"]["id"] == message_id
    assert payload["data"]["attempts"] == 1 and due.url == HOOK
    assert store.write(lambda conn: webhooks.claim(conn, now=T0 + 3, limit=10, lease=30)) == []  # leased
    store.write(lambda conn: webhooks.settle(conn, due, status="pending", code=500, error="HTTP 500",
                                             retry_at=T0 + 10))
    [again] = store.write(lambda conn: webhooks.claim(conn, now=T0 + 10, limit=10, lease=30))
    assert again.id == due.id and again.attempts == 1  # the same webhook-id on every retry
    store.write(lambda conn: webhooks.endpoint_gone(conn, HOOK, T0 + 11, "410 Gone"))
    assert store.write(lambda conn: webhooks.claim(conn, now=T0 + 99, limit=10, lease=30)) == []
    put_id = put(store)
    [held] = claim(store, now=T0 + 100)
    assert held.id == put_id
    record(store, held, delivered(), at=T0 + 101, hook=HOOK)
    assert {r["status"] for r in store.read(webhooks.list_deliveries)} == {"gone"}


def listed(store: Store, owner: str | None, status: str | None = None) -> tuple[int, list[str]]:
    total, page = store.read(lambda conn: messages.list_messages(conn, status=status, limit=10, start=0, now=T0,
                                                                 owner=owner))
    return total, [m["id"] for m in page]


def test_an_owner_sees_lists_retries_and_cancels_only_its_own_messages(store) -> None:
    ours = [put(store, send_at=T0 + 500, owner="a"), put(store, at=T0 + 1, send_at=T0 + 500, owner="a")]
    theirs = put(store, at=T0 + 2, send_at=T0 + 500, owner="b")
    nobody = put(store, at=T0 + 3, send_at=T0 + 500)  # stored without a key: the operator's
    assert listed(store, "a") == (2, ours) and listed(store, "b") == (1, [theirs])
    assert listed(store, "a", "scheduled") == (2, ours) and listed(store, "a", "canceled") == (0, [])
    assert listed(store, None) == (4, [*ours, theirs, nobody])  # every owner's: admin keys and the CLI
    assert store.read(lambda conn: messages.get_message(conn, theirs, T0, owner="a")) is None
    assert store.read(lambda conn: messages.get_message(conn, nobody, T0, owner="a")) is None
    assert store.read(lambda conn: messages.get_message(conn, ours[0], T0, owner="a"))["api_key"] == "a"
    assert status(store, nobody)["api_key"] is None and status(store, theirs)["api_key"] == "b"
    for act in (lambda conn: actions.retry_now(conn, theirs, T0 + 1, owner="a"),
                lambda conn: actions.cancel(conn, theirs, T0 + 1, HOOK, owner="a"),
                lambda conn: actions.cancel(conn, nobody, T0 + 1, HOOK, owner="a")):
        with pytest.raises(NoSuchQueuedMessageError):
            store.write(act)
    assert status(store, theirs)["events"] == [] and store.read(webhooks.list_deliveries) == []
    assert store.write(lambda conn: actions.cancel(conn, ours[0], T0 + 1, HOOK, owner="a")) == 1
    with pytest.raises(NoSuchQueuedMessageError):  # nothing pending, but another owner is not told so
        store.write(lambda conn: actions.retry_now(conn, ours[0], T0 + 2, owner="b"))
    assert store.write(lambda conn: actions.retry_now(conn, ours[1], T0 + 2, owner="a")) == 1
    assert store.write(lambda conn: actions.cancel(conn, theirs, T0 + 2, None)) == 1  # the operator's view


def test_webhooks_name_the_key_that_sent_the_message(store) -> None:
    sent = put(store, owner="billing")
    [held] = claim(store, now=T0)
    record(store, held, delivered(), hook=HOOK)
    unowned = put(store, send_at=T0 + 500)
    store.write(lambda conn: actions.cancel(conn, unowned, T0 + 2, HOOK))
    canceled = put(store, send_at=T0 + 500, owner="billing")
    store.write(lambda conn: actions.cancel(conn, canceled, T0 + 3, HOOK))
    data = [json.loads(row["payload"])["data"] for row in store.read(webhooks.list_deliveries)]
    assert [(d["id"], d["api_key"]) for d in data] == [(sent, "billing"), (unowned, None), (canceled, "billing")]


def _plans(store: Store, run: Callable[[Any], object]) -> list[str]:
    """How the database runs each statement of ``run``: EXPLAIN (QUERY PLAN) of what it executes."""
    seen: list[tuple[str, Any]] = []

    def heard(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", heard)
    try:
        store.read(run)
    finally:
        event.remove(store.engine, "before_cursor_execute", heard)
    explain = "EXPLAIN QUERY PLAN " if store.engine.dialect.name == "sqlite" else "EXPLAIN "
    plans = []
    with store.engine.connect() as conn:
        if store.engine.dialect.name != "sqlite":
            conn.exec_driver_sql("ANALYZE messages")  # the planner knows how many rows there are
        for statement, parameters in seen:
            if statement.lstrip().upper().startswith("SELECT"):
                rows = conn.exec_driver_sql(explain + statement, parameters)
                plans.append(" ".join(str(row[-1]) for row in rows))
    return plans


def test_listing_one_owners_messages_uses_an_index_behind_thousands_of_others(store) -> None:
    others = [messages.NewMessage(messages.new_id(), f"<{n}@example.com>", "app@example.com", ("a@example.com",), b"x",
                                  "http", T0 + n, T0 + 9000 if n % 3 == 1 else None, T0 + 10_000, f"key-{n % 50}")
              for n in range(6000)]
    store.write(lambda conn: messages.enqueue(conn, others))
    # A third each queued, scheduled and delivered: every state a list filters on matches thousands of other
    # keys' messages.
    done = [m.id for n, m in enumerate(others) if n % 3 == 0]
    store.write(lambda conn: conn.execute(update(schema.messages).where(schema.messages.c.id.in_(done))
                                          .values(status="delivered", due_at=None)))
    mine = [put(store, at=T0 + 7000 + n, send_at=T0 + 9000 if n else None, owner="mine") for n in range(3)]
    assert listed(store, "mine") == (3, mine) and listed(store, "mine", "scheduled") == (2, mine[1:])
    for state in (None, "queued", "scheduled", "delivered"):
        plans = _plans(store, lambda conn, s=state: messages.list_messages(
            conn, status=s, limit=10, start=0, now=T0, owner="mine"))
        assert len(plans) == 2 and all("messages_owner" in plan for plan in plans), (state, plans)


def begin(store: Store, key: str, fingerprint: str = "f", now: float = T0, mode: str = "direct") -> keys.Begun:
    return store.write(lambda conn: keys.begin(conn, key, fingerprint, mode=mode, now=now, lease=10))


def test_idempotency_keys_claim_replay_conflict_and_expire(store) -> None:
    assert begin(store, "k") == keys.Begun()
    assert begin(store, "k").conflict == "in-flight"
    answer = StoredResponse(202, "application/json", b'{"ok": true}')
    store.write(lambda conn: keys.finish(conn, "k", answer))
    assert begin(store, "k").replay == answer
    assert begin(store, "k", "other").conflict == "mismatch"
    assert begin(store, "free") == keys.Begun()
    store.write(lambda conn: keys.release(conn, "free"))
    assert begin(store, "free") == keys.Begun()  # released: nothing was sent, a retry really tries
    assert begin(store, "new", now=T0 + keys.TTL_SECONDS + 1) == keys.Begun()  # expired ones are purged on the way
    assert begin(store, "k", "other", now=T0 + keys.TTL_SECONDS + 2) == keys.Begun()


def test_an_abandoned_key_is_answered_from_its_recorded_outcomes(store) -> None:
    assert begin(store, "direct") == keys.Begun()
    store.write(lambda conn: keys.record(conn, "direct", [(0, {"status": "accepted"})]))
    assert begin(store, "direct", now=T0 + 5).conflict == "in-flight"  # its lease still runs
    assert begin(store, "direct", now=T0 + 11).abandoned == {0: {"status": "accepted"}}
    assert begin(store, "queued", mode="queued") == keys.Begun()
    # A queued request writes its messages with its answer: abandoned with nothing recorded, it sent nothing.
    assert begin(store, "queued", now=T0 + 11, mode="queued") == keys.Begun()
    assert begin(store, "queued", now=T0 + 12, mode="queued").conflict == "in-flight"  # taken over, leased again


def test_a_key_a_retry_took_over_is_no_longer_the_late_requests_to_finish_or_release(store) -> None:
    def claim(key: str, holder: str, now: float, mode: str = "queued") -> keys.Begun:
        return store.write(lambda conn: keys.begin(conn, key, "f", mode=mode, now=now, lease=10, holder=holder))

    def holds(key: str, holder: str) -> bool:
        return store.write(lambda conn: keys.holds(conn, key, holder))

    assert claim("k", "first", T0).holder == "first" and holds("k", "first")
    # The first request is alive but its lease ran out (its renewals failed): a retry takes the key over.
    assert claim("k", "retry", T0 + 11).holder == "retry"
    assert not holds("k", "first") and holds("k", "retry")
    store.write(lambda conn: keys.release(conn, "k", "first"))  # the late request's release leaves it alone
    assert claim("k", "third", T0 + 12).conflict == "in-flight"
    # A direct request answered from its recorded outcomes takes the key over too.
    assert claim("d", "first", T0, "direct").holder == "first"
    store.write(lambda conn: keys.record(conn, "d", [(0, {"status": "accepted"})]))
    assert claim("d", "retry", T0 + 11, "direct").abandoned == {0: {"status": "accepted"}}
    assert not holds("d", "first") and holds("d", "retry")


def test_concurrent_claimers_never_take_the_same_message(stores) -> None:
    ids = {put(stores[0], at=T0 + n / 1000) for n in range(120)}
    taken: list[str] = []
    lock = threading.Lock()

    def claimer(store: Store) -> None:
        while True:
            got = claim(store, now=T0 + 1, limit=3)
            if not got:
                return
            with lock:
                taken.extend(c.id for c in got)

    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(claimer, stores[n % 2]) for n in range(4)]:
            future.result(timeout=60)
    assert sorted(taken) == sorted(ids)


def test_concurrent_requests_with_one_key_claim_it_once(stores) -> None:
    def attempt(n: int) -> keys.Begun:
        return begin(stores[n % 2], "shared-key")

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(16)))
    assert outcomes.count(keys.Begun()) == 1
    assert all(o.conflict == "in-flight" for o in outcomes if o != keys.Begun())


def test_concurrent_takeovers_of_an_abandoned_queued_key_let_one_through(stores) -> None:
    assert begin(stores[0], "dead", mode="queued") == keys.Begun()

    def attempt(n: int) -> keys.Begun:
        return begin(stores[n % 2], "dead", now=T0 + 11, mode="queued")

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(16)))
    assert outcomes.count(keys.Begun()) == 1, outcomes


def create_template(store: Store, name: str, at: float = T0) -> templates.StoredTemplate | None:
    return store.write(lambda conn: templates.create(conn, name, subject="Hi {{ name }}", text=None,
                                                     html="<p>{{ name }}</p>", now=at))


def test_templates_are_created_once_replaced_with_a_new_version_listed_and_deleted(stores) -> None:
    store, other = stores
    first = create_template(store, "welcome")
    assert first is not None and (first.version, first.subject, first.text) == (1, "Hi {{ name }}", None)
    assert create_template(other, "welcome", at=T0 + 1) is None  # the name is taken, whichever store asks
    replaced = other.write(lambda conn: templates.replace(conn, "welcome", subject="Hello", text="Hello {{ x }}",
                                                          html=None, now=T0 + 2))
    assert replaced is not None and (replaced.version, replaced.html, replaced.created_at) == (2, None, T0)
    assert store.read(lambda conn: templates.get(conn, "welcome")) == replaced
    assert other.write(lambda conn: templates.replace(conn, "nothing", subject="x", text="y", html=None,
                                                      now=T0)) is None
    create_template(store, "receipt")
    listed = store.read(templates.list_all)
    assert [(t.name, t.version, t.updated_at) for t in listed] == [("receipt", 1, T0), ("welcome", 2, T0 + 2)]
    assert other.write(lambda conn: templates.delete(conn, "welcome")) is True
    assert store.write(lambda conn: templates.delete(conn, "welcome")) is False
    assert store.read(lambda conn: templates.get(conn, "welcome")) is None


def test_concurrent_creations_of_one_template_let_one_through_and_updates_count_every_version(stores) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(lambda n: create_template(stores[n % 2], "welcome"), range(16)))
    assert sum(m is not None for m in made) == 1

    def change(n: int) -> int:
        changed = stores[n % 2].write(lambda conn: templates.replace(conn, "welcome", subject=f"v{n}", text="t",
                                                                     html=None, now=T0 + n))
        assert changed is not None
        return changed.version

    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = list(pool.map(change, range(16)))
    assert sorted(versions) == list(range(2, 18))


def test_readiness_check_and_description(store, store_url) -> None:
    store.check()
    assert "postgresql+psycopg" not in store.describe() and "***" not in store.describe()
    assert repr(store) == f"<Store {store.describe()}>"


def test_a_store_a_later_release_upgraded_is_refused_in_one_line_naming_the_fix(store_url, monkeypatch) -> None:
    made = Store(store_url).open()
    with made.engine.begin() as conn:  # as a later release's migration leaves it
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    made.close()
    later = Store(store_url)
    for attempt in (later.open, later.upgrade):  # at start-up (SQLite upgrades itself), and `db upgrade`
        with pytest.raises(StoreSchemaError, match="revision 0099, which this version does not know .* run that"):
            attempt()
    for name, value in {"GATEWAY_ENV": "testing", "MAIL_BACKEND": "memory", "GATEWAY_DELIVERY": "queued",
                        "GATEWAY_STORE_URL": store_url}.items():
        monkeypatch.setenv(name, value)
    for args in (["db", "upgrade"], ["db", "check"], ["worker"]):
        done = CliRunner().invoke(main, args)
        lines = done.output.strip().splitlines()
        assert done.exit_code == 1 and len(lines) == 1, (args, done.output, done.exception)
        assert "revision 0099, which this version does not know" in lines[0] and "GATEWAY_STORE_URL" in lines[0]
        assert "db upgrade" not in lines[0]  # upgrading cannot help
    with Store(store_url).engine.connect() as conn:  # left as it was
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0099"


@pytest.fixture
def empty_url(store_url: str, request: pytest.FixtureRequest, tmp_path) -> str:
    """A database of the same engine as ``store_url`` with nothing in it yet."""
    if store_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path}/empty.sqlite3"
    return request.getfixturevalue("postgres").create_database()


@pytest.mark.parametrize("revision", [None, "ae1027a6acf"])  # another program's own Alembic revision, or none
def test_another_programs_database_is_refused_and_left_as_it_was(empty_url, monkeypatch, revision) -> None:
    with Store(empty_url).engine.begin() as conn:
        conn.execute(text("CREATE TABLE auth_user (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(text("INSERT INTO auth_user VALUES (7, 'ann')"))
        if revision is not None:
            conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            conn.execute(text(f"INSERT INTO alembic_version VALUES ('{revision}')"))
    says = "another program's tables (auth_user)" if revision is None else "or it is another program's database"
    other = Store(empty_url)
    for attempt in (other.open, other.upgrade):
        with pytest.raises(StoreSchemaError, match=re.escape(says)):
            attempt()
    for name, value in {"GATEWAY_ENV": "testing", "MAIL_BACKEND": "memory", "GATEWAY_DELIVERY": "queued",
                        "GATEWAY_STORE_URL": empty_url}.items():
        monkeypatch.setenv(name, value)
    for args in (["db", "upgrade"], ["db", "check"], ["worker"]):
        done = CliRunner().invoke(main, args)
        lines = done.output.strip().splitlines()
        assert done.exit_code == 1 and len(lines) == 1 and says in lines[0], (args, done.output, done.exception)
        assert "GATEWAY_STORE_URL to" in lines[0] and "run `mail-gateway db upgrade`" not in lines[0]
    left = Store(empty_url)
    with left.engine.connect() as conn:  # no table of the gateway's added among them, no row renumbered
        assert set(inspect(conn).get_table_names()) == {"auth_user"} | ({"alembic_version"} if revision else set())
        assert conn.execute(text("SELECT id, name FROM auth_user")).all() == [(7, "ann")]


def test_a_late_bounce_marks_its_recipient_bounced_and_sums_up_the_message(stores) -> None:
    first, second = stores
    message_id = put(first, "gone@example.com", "kept@example.com")
    found = second.write(lambda conn: bounces.mark_bounced(conn, message_id, "gone@EXAMPLE.com", reason="550 5.1.1",
                                                           now=T0 + 5))
    assert found is True
    status = first.read(lambda conn: messages.get_message(conn, message_id, T0 + 5))
    assert [(r["email"], r["status"], r["reason"]) for r in status["recipients"]] == [
        ("gone@example.com", "bounced", "550 5.1.1"), ("kept@example.com", "queued", None)]
    assert status["status"] == "queued"  # one is still pending
    assert second.write(lambda conn: bounces.mark_bounced(conn, message_id, "other@example.com", reason="x",
                                                          now=T0 + 6)) is False
    second.write(lambda conn: bounces.mark_bounced(conn, message_id, "kept@example.com", reason="550", now=T0 + 7))
    assert first.read(lambda conn: messages.get_message(conn, message_id, T0 + 7))["status"] == "bounced"


def test_inbound_mail_is_kept_with_its_webhook(stores) -> None:
    first, second = stores
    received = inbound.Received("inb1", "customer@example.net", ["support@example.com"], HOOK, b"Subject: hi\r\n\r\nx")
    first.write(lambda conn: inbound.add(conn, received, {"type": "message.inbound"}, T0))
    assert second.read(lambda conn: inbound.raw(conn, "inb1")) == b"Subject: hi\r\n\r\nx"
    assert second.read(lambda conn: inbound.raw(conn, "nothing")) is None
    [row] = second.read(webhooks.list_deliveries)
    assert (row["type"], row["status"], json.loads(str(row["payload"]))) == (
        "message.inbound", "pending", {"type": "message.inbound"})


def test_suppressions_are_mailboxes_that_expire_and_are_removed(stores) -> None:
    first, other = stores
    first.write(lambda conn: suppressions.add(conn, "Bob@EXAMPLE.com", "manual", source="api", now=T0))
    first.write(lambda conn: suppressions.add(conn, "user@bücher.example", "hard-bounce", source="smtp",
                                              message_id="m1", detail="550 5.1.1 gone", expires_at=T0 + 10, now=T0))
    asked = ["Bob@example.com", "bob@example.com", "user@xn--bcher-kva.example", "USER@bücher.example", "x"]
    assert other.read(lambda conn: suppressions.suppressed(conn, asked, now=T0 + 5)) == {
        "Bob@example.com", "user@xn--bcher-kva.example"}
    assert other.read(lambda conn: suppressions.suppressed(conn, asked, now=T0 + 10)) == {"Bob@example.com"}
    # Renewed by a later bounce: the latest cause, and never a shorter life than the entry had.
    other.write(lambda conn: suppressions.add(conn, "Bob@example.com", "hard-bounce", source="smtp",
                                              expires_at=T0 + 1, now=T0 + 2))
    [bob] = first.read(lambda conn: suppressions.list_entries(conn, contains="BOB", now=T0 + 5))
    assert (bob.reason, bob.source, bob.expires_at, bob.created_at) == ("hard-bounce", "smtp", None, T0 + 2)
    assert [e.reason for e in first.read(lambda conn: suppressions.list_entries(conn, now=T0 + 5))] == [
        "hard-bounce", "hard-bounce"]
    assert first.read(lambda conn: suppressions.list_entries(conn, reason="manual", now=T0)) == []
    assert [e.email for e in first.read(lambda conn: suppressions.list_entries(conn, limit=1, start=1, now=T0))] == [
        "user@bücher.example"]
    assert other.write(lambda conn: suppressions.remove(conn, "bob@example.com")) is False
    assert other.write(lambda conn: suppressions.remove(conn, "Bob@Example.Com")) is True
    assert first.write(lambda conn: suppressions.purge_expired(conn, T0 + 10)) == 1
    assert first.read(lambda conn: suppressions.list_entries(conn, now=T0)) == []


def test_the_list_is_searched_by_text_copied_from_an_address_whatever_its_letters(store) -> None:
    given = ["ÉLODIE@example.com", "Zed@example.com", "jörg@BÜCHER.example", "a_b%c/d@example.com", "abxcd@example.com"]
    for address in given:
        store.write(lambda conn, address=address: suppressions.add(conn, address, "manual", source="api", now=T0))

    def found(text: str) -> list[str]:
        return sorted(e.email for e in store.read(lambda conn: suppressions.list_entries(conn, contains=text, now=T0)))

    # Lowered by Python ('élodie') and by the database (which folds ASCII alone), 'ÉLODIE' missed itself.
    assert found("ÉLODIE") == found("Élodie@EXAMPLE") == ["ÉLODIE@example.com"]
    assert found("BÜCHER") == ["jörg@BÜCHER.example"] and found("zED") == ["Zed@example.com"]
    assert found("_b%c/") == found("B%C/D") == ["a_b%c/d@example.com"]  # wildcards and the escape are text
    assert found("%") == found("/") == ["a_b%c/d@example.com"] and found("b_c") == []  # not abxcd


def test_the_list_is_read_whole_with_expiries_and_each_change_to_it_is_counted(stores) -> None:
    """What a direct gateway keeps a copy of (``Suppressions``), and what tells it the copy is out of date: a
    change of the list by this store's own writes, not another store's, nor a write that leaves the list alone."""
    first, other = stores
    before = first.writer.changed[suppressions.TABLE]
    first.write(lambda conn: suppressions.add(conn, "Bob@EXAMPLE.com", "manual", source="api", now=T0))
    after_add = first.writer.changed[suppressions.TABLE]
    assert after_add != before
    other.write(lambda conn: suppressions.add(conn, "ann@example.com", "hard-bounce", source="smtp",
                                              expires_at=T0 + 10, now=T0))
    first.write(lambda conn: templates.create(conn, "welcome", subject="Hi", text="Hi", html=None, now=T0))
    assert first.writer.changed[suppressions.TABLE] == after_add
    entries = other.read(lambda conn: suppressions.live_entries(conn, now=T0 + 5, limit=2))
    assert entries == {"Bob@example.com": None, "ann@example.com": T0 + 10}
    assert suppressions.among(entries, ["bob@example.com", "Bob@example.com", "ann@EXAMPLE.com", "x"],
                              now=T0 + 5) == {"Bob@example.com", "ann@EXAMPLE.com"}
    assert suppressions.among(entries, ["ann@example.com"], now=T0 + 10) == set()
    assert other.read(lambda conn: suppressions.live_entries(conn, now=T0 + 5, limit=1)) is None
    assert other.read(lambda conn: suppressions.live_entries(conn, now=T0 + 10, limit=1)) == {"Bob@example.com": None}
    first.write(lambda conn: suppressions.remove(conn, "Bob@example.com"))
    assert first.writer.changed[suppressions.TABLE] != after_add


def test_concurrent_adds_of_one_address_keep_one_entry(stores) -> None:
    def add(n: int) -> None:
        stores[n % 2].write(lambda conn: suppressions.add(conn, "same@example.com", "hard-bounce", source="smtp",
                                                          detail=str(n), now=T0 + n))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(add, range(16)))
    [entry] = stores[0].read(lambda conn: suppressions.list_entries(conn, now=T0))
    assert entry.address == "same@example.com"


def test_an_event_is_recorded_in_the_history_and_as_a_webhook(stores) -> None:
    store = stores[0]
    id_ = put(store, "a@example.com")
    event_id = store.write(lambda conn: record_event(
        conn, event_type="bounced", message_id=id_, recipient="a@example.com", reject_reason="bounced",
        mta_response="550 5.1.1 no such user", webhook_url=HOOK, now=T0 + 1))
    history = stores[1].read(lambda conn: messages.get_message(conn, id_, T0 + 1))["events"]
    assert [(e["type"], e["recipient"], e["text"]) for e in history][-1] == (
        "bounced", "a@example.com", "550 5.1.1 no such user")
    [row] = [r for r in store.read(webhooks.list_deliveries) if r["type"] == "message.bounced"]
    data = json.loads(row["payload"])["data"]
    assert (data["event_id"], data["event_type"], data["reject_reason"], data["id"]) == (
        event_id, "bounced", "bounced", id_)
    # Without a queued message (an unsubscribe from an old message): only the webhook.
    store.write(lambda conn: record_event(conn, event_type="unsubscribed", message_id=None,
                                          recipient="b@example.com", reject_reason="unsubscribed", webhook_url=HOOK))
    assert [r["type"] for r in store.read(webhooks.list_deliveries)][-1] == "message.unsubscribed"
    with pytest.raises(ValueError, match="event_type"):
        store.write(lambda conn: record_event(conn, event_type="exploded", message_id=None, recipient=None))


def test_a_messages_tags_and_metadata_are_in_its_status_and_in_every_webhook_of_its_events(stores) -> None:
    store = stores[0]
    labels = {"tags": ["receipt"], "metadata": {"order_id": "1234", "name": "Jürgen"}}
    new = messages.NewMessage(messages.new_id(), "<t@example.com>", "app@example.com", ("a@example.com",
                              "b@example.com"), b"x", "http", T0, T0 + 500, T0 + 1000, None, ("receipt",),
                              {"order_id": "1234", "name": "Jürgen"})
    store.write(lambda conn: messages.enqueue(conn, [new]))
    unlabelled = put(store)
    assert {k: v for k, v in status(store, new.id).items() if k in labels} == labels
    _, listed_page = stores[1].read(lambda conn: messages.list_messages(conn, status=None, limit=10, start=0, now=T0))
    assert [(m["tags"], m["metadata"]) for m in listed_page] == [(["receipt"], labels["metadata"]), ([], {})]
    store.write(lambda conn: record_event(conn, event_type="bounced", message_id=new.id, recipient="a@example.com",
                                          reject_reason="bounced", webhook_url=HOOK, now=T0 + 1))
    store.write(lambda conn: actions.cancel(conn, new.id, T0 + 2, HOOK))
    store.write(lambda conn: actions.cancel(conn, unlabelled, T0 + 2, HOOK))
    found = [json.loads(r["payload"])["data"] for r in store.read(webhooks.list_deliveries)]
    assert [(d["id"], d["tags"], d["metadata"]) for d in found] == [
        (new.id, ["receipt"], labels["metadata"])] * 3 + [(unlabelled, [], {})]


def test_messages_are_listed_by_tag_and_by_recipient_alike_on_both_engines(stores) -> None:
    store = stores[0]

    def labelled(*tags: str, to: tuple[str, ...] = ("a@example.com",)) -> str:
        new = messages.NewMessage(messages.new_id(), "<t@example.com>", "app@example.com", to, b"x", "http", T0,
                                  None, T0 + 1000, None, tags)
        store.write(lambda conn: messages.enqueue(conn, [new]))
        return new.id

    receipt = labelled("receipt", "shop", to=("Bob@Example.com", "élodie@example.com"))
    quoted = labelled('x"receipt', 'receipt"')  # a tag's quotes are part of it, not ends of another
    other = labelled("Receipt", "receipts", "shop")
    untagged = put(store, "bob@example.org")

    def found(**wanted: str) -> list[str]:
        total, page = stores[1].read(lambda conn: messages.list_messages(conn, status=None, limit=10, start=0,
                                                                         now=T0, **wanted))
        assert total == len(page)
        return [m["id"] for m in page]

    assert found(tag="receipt") == [receipt]
    assert found(tag="shop") == [receipt, other]
    assert found(tag='receipt"') == [quoted] and found(tag="rec") == [] and found(tag="Receipt") == [other]
    # An address as it was sent, whatever the case of its ASCII letters (as the suppression list's search).
    assert found(recipient="bob@example.com") == [receipt] and found(recipient="BOB@example.org") == [untagged]
    assert found(recipient="élodie@EXAMPLE.com") == [receipt] and found(recipient="ÉLODIE@example.com") == []
    assert found(tag="shop", recipient="bob@example.com") == [receipt]
    # What no stored tag or address holds, and PostgreSQL cannot compare (a NUL) or no store can encode (a lone
    # surrogate, what a command line argument of bytes that are not UTF-8 gives), finds nothing.
    for odd in ("a\x00b", "\udcff"):
        assert found(tag=odd) == [] and found(recipient=odd) == []


def test_inbound_mail_is_forgotten_after_its_lifetime(stores) -> None:
    first, second = stores
    for name, at in (("old", T0), ("new", T0 + 100)):
        received = inbound.Received(name, "", ["support@example.com"], HOOK, b"x")
        first.write(lambda conn, r=received, at=at: inbound.add(conn, r, {}, at))
    assert second.write(lambda conn: inbound.purge_before(conn, T0 + 50)) == 1
    assert [second.read(lambda conn, n=n: inbound.raw(conn, n)) for n in ("old", "new")] == [None, b"x"]


def test_another_programs_sqlite_file_is_refused_before_anything_writes_to_it(tmp_path, monkeypatch) -> None:
    # The gateway's connections set the write-ahead log and incremental vacuum up as they open a file: before, a
    # refused database had its journal mode changed all the same.
    path = tmp_path / "db.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE auth_user (id INTEGER PRIMARY KEY, name TEXT)")
    before = path.read_bytes()
    url = f"sqlite:///{path}"
    for attempt in (Store(url).open, Store(url).upgrade):
        with pytest.raises(StoreSchemaError, match=re.escape("another program's tables (auth_user)")):
            attempt()
    monkeypatch.setenv("GATEWAY_STORE_URL", url)
    assert CliRunner().invoke(main, ["db", "check"]).exit_code == 1
    assert path.read_bytes() == before and not (tmp_path / "db.sqlite3-wal").exists()


def test_db_check_of_an_sqlite_file_not_yet_made_changes_nothing(tmp_path, monkeypatch) -> None:
    # `db check` says it changes nothing: it made an empty store in write-ahead-log mode where none was, so a
    # mistyped GATEWAY_STORE_URL left a file behind, and the check after it found a store that was not there.
    path = tmp_path / "not-yet.sqlite3"
    for name, value in {"GATEWAY_ENV": "testing", "MAIL_BACKEND": "memory", "GATEWAY_DELIVERY": "queued",
                        "GATEWAY_STORE_URL": f"sqlite:///{path}"}.items():
        monkeypatch.setenv(name, value)
    done = CliRunner().invoke(main, ["db", "check"])
    assert done.exit_code == 1 and "has no schema yet" in done.output, done.output
    assert list(tmp_path.iterdir()) == []
