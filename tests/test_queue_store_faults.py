"""Delivery workers when the store cannot record an outcome: a reply text the store cannot hold, a message gone
from the store, a store locked for longer than a lease, a store file deleted under the workers. Each message still
reaches the upstream once: an outcome the store refuses is stored in a form it takes, or logged and dropped, never
retried for ever; one refused outcome never holds up the others; a message stays in its worker's hands until its
outcome is written. Real SQLite files, a real PostgreSQL server, real aiosmtpd upstreams."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from crash_support import HoldingHandler, arrivals
from ingress_support import wait_until
from queue_support import MESSAGE, Queued, queued_app
from smtp_server import RecordingHandler

NUL_REPLY = "550 5.1.1 no\x00such user"


class NulReplyHandler(RecordingHandler):
    """Takes every message; refuses those for ``nobody@example.com`` after the final dot with a reply whose text
    holds a NUL, as a broken upstream may."""

    async def handle_DATA(self, server, session, envelope):
        await super().handle_DATA(server, session, envelope)
        return NUL_REPLY if "nobody@example.com" in envelope.rcpt_tos else "250 2.0.0 OK queued"


class StoreAccess:
    """The test's own connection to a store, beside the gateway's: SQL run directly, and locks held."""

    def __init__(self, url: str) -> None:
        self.path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None
        self.url = url

    def _connect(self) -> Any:
        if self.path is not None:
            return sqlite3.connect(self.path, isolation_level=None)
        return psycopg.connect(self.url, autocommit=True)

    def execute(self, sql: str, *params: Any) -> list[tuple]:
        """``?`` marks each parameter, on either store."""
        conn = self._connect()
        try:
            cursor = conn.execute(sql if self.path is not None else sql.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []
        finally:
            conn.close()

    def forget(self, message_id: str) -> None:
        """Delete a message from the store, as an operator cleaning up by hand may."""
        for table, column in (("events", "message_id"), ("recipients", "message_id"), ("bodies", "message_id"),
                              ("messages", "id")):
            self.execute(f"DELETE FROM {table} WHERE {column} = ?", message_id)

    def lease_of(self, message_id: str) -> tuple[str | None, float | None]:
        [(token, due)] = self.execute("SELECT lease_token, due_at FROM messages WHERE id = ?", message_id)
        return token, due

    @contextmanager
    def locked(self, tables: str = "messages") -> Iterator[None]:
        """No change can be written while this is held (on PostgreSQL: none touching ``tables``); reads go on."""
        if self.path is not None:
            conn = sqlite3.connect(self.path, isolation_level=None)
            conn.execute("BEGIN EXCLUSIVE")
        else:
            conn = psycopg.connect(self.url)
            conn.execute(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            conn.rollback()
            conn.close()


@pytest.fixture
def apps() -> Iterator[list[Queued]]:
    started: list[Queued] = []
    yield started
    for queued in started:
        queued.stop()


def start(apps: list[Queued], make_settings: Any, store_url: str, upstream: Any, **values: Any) -> Queued:
    queued = queued_app(make_settings, gateway_store_url=store_url, **upstream.queued_settings(), **values)
    apps.append(queued)
    return queued


def logged(caplog: pytest.LogCaptureFixture, text: str, since: float = 0.0) -> bool:
    return any(text in record.getMessage() and record.created >= since for record in list(caplog.records))


def test_a_reply_holding_a_nul_is_recorded_escaped_and_each_message_sent_once(apps, make_settings, store_url,
                                                                              smtp_server_factory) -> None:
    upstream = smtp_server_factory(NulReplyHandler())
    queued = start(apps, make_settings, store_url, upstream)
    refused = queued.send({**MESSAGE, "to": ["nobody@example.com"]})
    unrelated = [queued.send({**MESSAGE, "subject": f"Unrelated {n}"}) for n in range(3)]
    found = queued.wait_status(refused["id"], "bounced")
    for answer in unrelated:
        queued.wait_status(answer["id"], "delivered")
    reason = found["recipients"][0]["reason"]
    assert "550 5.1.1 no\\x00such user" in reason and "\x00" not in reason
    assert found["recipients"][0]["attempts"] == 1
    sent = arrivals(upstream.handler)
    assert sent[refused["message_id"]] == 1 and all(sent[a["message_id"]] == 1 for a in unrelated), sent


def start_held(apps: list[Queued], make_settings: Any, store_url: str, smtp_server_factory: Any,
               caplog: pytest.LogCaptureFixture) -> tuple[HoldingHandler, Queued, StoreAccess]:
    """A queued app whose upstream holds every message until the test lets it go, and the test's own access to
    its store."""
    caplog.set_level(logging.WARNING, "mail_gateway")
    handler = HoldingHandler()
    handler.hold.set()
    queued = start(apps, make_settings, store_url, smtp_server_factory(handler))
    return handler, queued, StoreAccess(store_url)


def test_an_outcome_the_store_refuses_is_dropped_and_the_rest_of_its_batch_recorded(
        apps, make_settings, store_url, smtp_server_factory, caplog) -> None:
    handler, queued, store = start_held(apps, make_settings, store_url, smtp_server_factory, caplog)
    gone, kept = queued.send(), queued.send()
    wait_until(lambda: handler.holding == 2, "both messages reached the upstream")
    store.forget(gone["id"])  # its outcome now refers to a message the store no longer has
    with store.locked():  # both outcomes wait, then go to the store together
        handler.hold.clear()
        wait_until(lambda: logged(caplog, "could not record 2 delivery outcomes yet"), "both outcomes waited")
    queued.wait_status(kept["id"], "delivered")
    wait_until(lambda: logged(caplog, f"outcome of message {gone['id']}"), "the refused outcome was logged")
    later = queued.send()
    queued.wait_status(later["id"], "delivered")
    sent = arrivals(handler)
    assert [sent[a["message_id"]] for a in (gone, kept, later)] == [1, 1, 1], sent


def test_a_message_whose_outcome_waits_longer_than_its_lease_is_not_sent_again(
        apps, make_settings, store_url, smtp_server_factory, caplog) -> None:
    """The whole store locked: no claim, renewal or outcome can be written."""
    outcome_waits_longer_than_its_lease(apps, make_settings, store_url, smtp_server_factory, caplog, "messages")


def test_a_message_is_held_while_its_outcome_waits_for_a_locked_table(apps, make_settings, postgres_url,
                                                                      smtp_server_factory, caplog) -> None:
    """Only the recipients locked: claims and renewals go on, outcomes wait."""
    outcome_waits_longer_than_its_lease(apps, make_settings, postgres_url, smtp_server_factory, caplog, "recipients")


def outcome_waits_longer_than_its_lease(apps: list[Queued], make_settings: Any, store_url: str,
                                        smtp_server_factory: Any, caplog: pytest.LogCaptureFixture,
                                        tables: str) -> None:
    handler, queued, store = start_held(apps, make_settings, store_url, smtp_server_factory, caplog)
    answer = queued.send()
    wait_until(lambda: handler.holding == 1, "the message reached the upstream")
    with store.locked(tables):
        token, lease_end = store.lease_of(answer["id"])
        failing_since = time.time()
        handler.hold.clear()
        wait_until(lambda: logged(caplog, "could not record 1 delivery outcomes yet", failing_since),
                   "its outcome waited for the store")
        # Until the lease it had when the store stopped taking its outcome has run out, and beyond: the message is
        # renewed (or, with the whole store locked, nothing at all can be written), never claimed again.
        wait_until(lambda: time.time() > lease_end + 1 and logged(caplog, "could not record", lease_end + 1),
                   "the lease ran out while the outcome waited")
        assert store.lease_of(answer["id"])[0] == token
    found = queued.wait_status(answer["id"], "delivered")
    assert [event["type"] for event in found["events"]] == ["delivered"], found["events"]
    assert arrivals(handler)[answer["message_id"]] == 1


def test_a_store_file_deleted_under_the_workers_is_recreated_and_nothing_is_sent_twice(
        apps, make_settings, smtp_server_factory, tmp_path, caplog) -> None:
    handler = HoldingHandler()
    handler.hold.set()
    upstream = smtp_server_factory(handler)
    path = tmp_path / "store.sqlite3"
    queued = start(apps, make_settings, f"sqlite:///{path}", upstream)
    before = [queued.send({**MESSAGE, "subject": f"Before {n}"}) for n in range(3)]
    wait_until(lambda: handler.holding == 3, "the first messages reached the upstream")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    after = [queued.send({**MESSAGE, "subject": f"After {n}"}) for n in range(3)]  # into the recreated file
    assert logged(caplog, "DISAPPEARED")
    handler.hold.clear()  # the outcomes of the first messages belong to the deleted file
    after += [queued.send({**MESSAGE, "subject": f"Later {n}"}) for n in range(3)]
    for answer in after:
        queued.wait_status(answer["id"], "delivered")
    sent = arrivals(handler)
    assert all(sent[a["message_id"]] == 1 for a in before + after), sent
