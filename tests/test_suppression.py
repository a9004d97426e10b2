"""The suppression list: a recipient an upstream said has no mailbox (550 5.1.1) is never sent to again, in
direct and queued delivery, while a policy refusal (550 5.7.1) suppresses no one; the API and the CLI on SQLite
and PostgreSQL; addresses compared as mailboxes; entries that expire."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy
from api_helpers import assert_problem
from click.testing import CliRunner
from ingress_support import wait_until
from queue_support import queued_app
from smtp_server import FaultHandler

from mail_gateway import MailGateway, create_app
from mail_gateway.cli import main
from mail_gateway.runtime import Runtime
from mail_gateway.store import suppressions, webhooks
from mail_gateway.suppression.service import FILE_LOOK_SECONDS, LIST_FRESH_SECONDS

GONE = "gone@example.com"
FRIEND = "friend@example.com"


@dataclass
class CountingHandler(FaultHandler):
    """A ``FaultHandler`` that also records every address it was offered at RCPT, refused or not."""

    offered: list[str] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.offered.append(address)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


def message(*to: str) -> dict[str, Any]:
    return {"from": "app@example.com", "to": list(to), "subject": "Hello", "text": "Hi."}


def direct_app(make_settings, upstream, tmp_path, **values: Any) -> Any:
    values.setdefault("gateway_store_url", f"sqlite:///{tmp_path}/store.db")
    return create_app(make_settings(**upstream.settings(**values)))


def statuses(body: dict[str, Any]) -> dict[str, str]:
    return {r["email"]: r["status"] for r in body["recipients"]}


def test_a_missing_mailbox_is_suppressed_and_never_offered_again(make_settings, smtp_server_factory, tmp_path,
                                                                 caplog) -> None:
    handler = CountingHandler(rcpt_replies={GONE: "550 5.1.1 <gone@example.com>: no such user"})
    upstream = smtp_server_factory(handler)
    client = direct_app(make_settings, upstream, tmp_path).test_client()
    first = client.post("/v1/messages", json=message(GONE, FRIEND))
    assert first.status_code == 202
    assert statuses(first.get_json()) == {GONE: "rejected", FRIEND: "accepted"}

    with caplog.at_level(logging.INFO, logger="mail_gateway.delivery"):
        second = client.post("/v1/messages", json=message(GONE, FRIEND))
    assert second.status_code == 202
    assert statuses(second.get_json()) == {GONE: "suppressed", FRIEND: "accepted"}
    assert handler.offered == [GONE, FRIEND, FRIEND]
    assert upstream.messages[-1].rcpt_tos == [FRIEND]
    assert "suppressed=1" in caplog.text

    # Every recipient suppressed: answered as when every recipient is refused, and nothing reaches the upstream.
    only = client.post("/v1/messages", json=message(GONE))
    body = assert_problem(only, 422, "recipients-suppressed")
    assert body["recipients"] == [{"email": GONE, "status": "suppressed", "reason": "on the suppression list"}]
    assert "DELETE /v1/suppressions" in body["detail"]
    assert handler.offered == [GONE, FRIEND, FRIEND] and len(upstream.messages) == 2

    listed = client.get("/v1/suppressions").get_json()["suppressions"]
    assert [(e["address"], e["reason"], e["source"]) for e in listed] == [(GONE, "hard-bounce", "smtp")]
    assert listed[0]["detail"].startswith("550 5.1.1")


@pytest.mark.parametrize("reply", ["550 5.7.1 Relaying denied by policy", "552 5.3.4 Message too big for me",
                                   "450 4.1.1 Try again later"])
def test_a_refusal_that_is_not_about_the_mailbox_suppresses_no_one(make_settings, smtp_server_factory, tmp_path,
                                                                   reply) -> None:
    handler = CountingHandler(rcpt_replies={GONE: reply})
    upstream = smtp_server_factory(handler)
    client = direct_app(make_settings, upstream, tmp_path).test_client()
    for _ in range(2):
        assert client.post("/v1/messages", json=message(GONE, FRIEND)).status_code == 202
    assert handler.offered == [GONE, FRIEND, GONE, FRIEND]
    assert client.get("/v1/suppressions").get_json()["suppressions"] == []


def test_queued_delivery_suppresses_a_missing_mailbox(make_settings, smtp_server_factory, queued_apps,
                                                      tmp_path) -> None:
    handler = CountingHandler(rcpt_replies={GONE: "550 5.1.1 no such user"})
    upstream = smtp_server_factory(handler)
    queued = queued_app(make_settings, **upstream.queued_settings())
    queued_apps.append(queued)
    first = queued.send(message(GONE, FRIEND))
    done = queued.wait_status(first["id"], "partial")
    assert statuses(done) == {GONE: "bounced", FRIEND: "delivered"}

    second = queued.send(message(GONE, FRIEND))
    assert statuses(second) == {GONE: "suppressed", FRIEND: "queued"}
    assert statuses(queued.wait_status(second["id"], "delivered")) == {FRIEND: "delivered"}
    assert handler.offered == [GONE, FRIEND, FRIEND]


def test_an_address_suppressed_after_acceptance_is_not_sent_to(make_settings, smtp_server_factory, queued_apps,
                                                              tmp_path) -> None:
    handler = CountingHandler()
    upstream = smtp_server_factory(handler)
    queued = queued_app(make_settings, workers=False, **upstream.queued_settings())
    queued_apps.append(queued)
    accepted = queued.send(message("Later@Example.COM", FRIEND))
    added = queued.client.post("/v1/suppressions", json={"address": "Later@example.com"})
    assert added.status_code == 201, added.get_data(as_text=True)
    queued.start_workers()
    done = queued.wait_status(accepted["id"], "partial", "delivered")
    assert statuses(done) == {"Later@example.com": "suppressed", FRIEND: "delivered"}  # the domain as parsed
    assert any(e["type"] == "suppressed" and e["recipient"] == "Later@example.com" for e in done["events"])
    assert handler.offered == [FRIEND]

    only = queued.send(message("later@EXAMPLE.com"))  # the local part's case kept: another mailbox
    queued.wait_status(only["id"], "delivered")
    assert handler.offered == [FRIEND, "later@example.com"]


def test_workers_read_the_list_with_each_claim_not_once_per_message(make_settings, smtp_server_factory,
                                                                   queued_apps) -> None:
    """A read transaction per delivered message cost as much CPU as the rest of its delivery; the claim that
    hands a worker its messages reads the list for all of them."""
    handler = CountingHandler()
    upstream = smtp_server_factory(handler)
    queued = queued_app(make_settings, workers=False, **upstream.queued_settings())
    queued_apps.append(queued)
    accepted = [queued.send(message(GONE, FRIEND)) for _ in range(20)]
    assert queued.client.post("/v1/suppressions", json={"address": GONE}).status_code == 201
    reads: list[str] = []

    def count(conn, cursor, statement: str, *args: object) -> None:
        if "FROM suppressions" in statement:
            reads.append(statement)

    engine = MailGateway.state(queued.app).store.engine
    sqlalchemy.event.listen(engine, "before_cursor_execute", count)
    try:
        queued.start_workers()
        for sent in accepted:
            assert statuses(queued.wait_status(sent["id"], "partial", "delivered")) == {
                GONE: "suppressed", FRIEND: "delivered"}
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", count)
    assert handler.offered == [FRIEND] * 20
    assert 1 <= len(reads) < 20, f"{len(reads)} reads of the suppression list for 20 delivered messages"


def test_an_all_suppressed_queued_message_is_sent_to_no_one(make_settings, smtp_server_factory, queued_apps) -> None:
    handler = CountingHandler()
    upstream = smtp_server_factory(handler)
    queued = queued_app(make_settings, workers=False, gateway_webhook_url="http://127.0.0.1:9/hook",
                        gateway_webhook_secret="whsec_" + "A" * 32,
                        **upstream.queued_settings())
    queued_apps.append(queued)
    accepted = queued.send(message(GONE))
    assert queued.client.post("/v1/suppressions", json={"address": GONE}).status_code == 201
    queued.start_workers()
    done = queued.wait_status(accepted["id"], "suppressed")
    assert statuses(done) == {GONE: "suppressed"}
    assert handler.offered == []
    rows = MailGateway.state(queued.app).store.read(webhooks.list_deliveries)
    assert [json.loads(r["payload"])["data"]["recipient"] for r in rows if r["type"] == "message.suppressed"] == [
        GONE]


def test_the_api_adds_lists_filters_and_removes(make_settings, store_url) -> None:
    client = create_app(make_settings(gateway_store_url=store_url, gateway_delivery="queued")).test_client()
    for address, reason in (("Bob@EXAMPLE.com", "manual"), ("ann@example.org", "complaint"),
                            ("user@bücher.example", "unsubscribe")):
        made = client.post("/v1/suppressions", json={"address": address, "reason": reason})
        assert made.status_code == 201, made.get_data(as_text=True)
        assert made.get_json()["source"] == "api" and made.get_json()["expires_at"] is None
    again = client.post("/v1/suppressions", json={"address": "Bob@example.COM", "detail": "asked by phone"})
    assert again.status_code == 201

    every = client.get("/v1/suppressions").get_json()["suppressions"]
    assert sorted(e["address"] for e in every) == ["Bob@example.COM", "ann@example.org", "user@bücher.example"]
    assert [e["address"] for e in client.get("/v1/suppressions?address=EXAMPLE.O").get_json()["suppressions"]] == [
        "ann@example.org"]
    assert [e["reason"] for e in client.get("/v1/suppressions?reason=unsubscribe").get_json()["suppressions"]] == [
        "unsubscribe"]
    page = client.get("/v1/suppressions?limit=2&start=2").get_json()
    assert len(page["suppressions"]) == 1 and page["limit"] == 2 and page["start"] == 2

    assert client.delete("/v1/suppressions/bob@example.com").status_code == 404  # another mailbox
    assert client.delete("/v1/suppressions/Bob@EXAMPLE.com").status_code == 204
    assert client.delete("/v1/suppressions/user@xn--bcher-kva.example").status_code == 204  # the IDN's A-labels
    gone = client.delete("/v1/suppressions/Bob@EXAMPLE.com")
    assert [e["field"] for e in assert_problem(gone, 404, "no-such-suppression")["errors"]] == ["address"]
    assert [e["address"] for e in client.get("/v1/suppressions").get_json()["suppressions"]] == ["ann@example.org"]


@pytest.mark.parametrize(("body", "field"), [({"address": "not an address"}, "address"),
                                             ({"address": "a@example.com", "reason": "spite"}, "reason"),
                                             ({"address": "a@example.com", "expires_at": "2020-01-01T00:00:00Z"},
                                              "expires_at"),
                                             ({"address": "a@example.com", "color": "red"}, "color")])
def test_the_api_refuses_a_bad_entry_naming_the_field(make_settings, tmp_path, body, field) -> None:
    client = create_app(make_settings(gateway_store_url=f"sqlite:///{tmp_path}/s.db")).test_client()
    problem = assert_problem(client.post("/v1/suppressions", json=body), 422, "invalid-message")
    assert field in [e["field"] for e in problem["errors"]]
    assert assert_problem(client.get("/v1/suppressions?reason=spite"), 400, "invalid-query")


@pytest.mark.parametrize("given", ["Bob <bob@example.com>", "<bob@example.com>", " bob@example.com",
                                   "bob@example.com\t", "bob@example.com, ann@example.com", "team: bob@example.com;",
                                   "bob@example.com (Bob)", '"bob"@example.com',
                                   "bob@example.com\r\nBcc: x@example.com", "bob\x00@example.com", "..@example.com",
                                   "bob@example..com"])
def test_an_entry_no_recipient_would_match_is_refused_naming_the_address(make_settings, tmp_path, monkeypatch,
                                                                           given) -> None:
    # Each was stored under a key of its own, answered 201, and left bob@example.com to be sent to.
    client = create_app(make_settings(gateway_store_url=f"sqlite:///{tmp_path}/s.db")).test_client()
    problem = assert_problem(client.post("/v1/suppressions", json={"address": given}), 422, "invalid-message")
    assert [e["field"] for e in problem["errors"]] == ["address"]
    monkeypatch.setenv("GATEWAY_STORE_URL", f"sqlite:///{tmp_path}/s.db")
    monkeypatch.setenv("GATEWAY_ENV", "testing")
    added = CliRunner().invoke(main, ["suppressions", "add", given])
    assert added.exit_code == 2 and "ADDRESS" in added.output
    assert client.get("/v1/suppressions").get_json()["suppressions"] == []


def test_a_named_address_is_refused_saying_the_address_to_give(make_settings, tmp_path) -> None:
    client = create_app(make_settings(gateway_store_url=f"sqlite:///{tmp_path}/s.db")).test_client()
    problem = assert_problem(client.post("/v1/suppressions", json={"address": "Bob <Bob@Example.com>"}), 422)
    assert "'Bob@Example.com'" in problem["errors"][0]["message"]
    for kept in ('"john doe"@example.com', "user@bücher.example", "用户@例子.广告"):  # quoted, IDN, SMTPUTF8
        assert client.post("/v1/suppressions", json={"address": kept}).status_code == 201, kept


def test_a_nul_in_a_note_a_filter_or_a_removal_is_refused_naming_the_field(make_settings, store_url) -> None:
    # PostgreSQL takes no NUL in text: each reached it and answered 503 store-unavailable (retry later).
    client = create_app(make_settings(gateway_store_url=store_url)).test_client()
    noted = client.post("/v1/suppressions", json={"address": "bob@example.com", "detail": "by\x00phone"})
    assert [e["field"] for e in assert_problem(noted, 422, "invalid-message")["errors"]] == ["detail"]
    filtered = client.get("/v1/suppressions?address=bob%00")
    assert [e["field"] for e in assert_problem(filtered, 400, "invalid-query")["errors"]] == ["address"]
    removed = client.delete("/v1/suppressions/bob%00@example.com")
    assert [e["field"] for e in assert_problem(removed, 422, "invalid-message")["errors"]] == ["address"]
    tab_and_line = client.post("/v1/suppressions", json={"address": "bob@example.com", "detail": "by\tphone\n"})
    assert tab_and_line.status_code == 201
    assert client.get("/readyz").status_code == 200


def test_an_expiry_past_the_year_9999_in_utc_is_refused_and_the_list_still_answers(make_settings, store_url,
                                                                                 monkeypatch) -> None:
    # 9999-12-31T23:59:59-14:00 is in the year 10000 in UTC: a timestamp, but no RFC 3339 time can show it.
    client = create_app(make_settings(gateway_store_url=store_url)).test_client()
    late = {"address": "late@example.com", "expires_at": "9999-12-31T23:59:59-14:00"}
    problem = assert_problem(client.post("/v1/suppressions", json=late), 422, "invalid-message")
    assert [e["field"] for e in problem["errors"]] == ["expires_at"] and "9999" in problem["errors"][0]["message"]
    latest = client.post("/v1/suppressions", json={**late, "expires_at": "9999-12-31T23:59:59Z"})
    assert latest.get_json()["expires_at"] == "9999-12-31T23:59:59Z"
    monkeypatch.setenv("GATEWAY_STORE_URL", store_url)
    monkeypatch.setenv("GATEWAY_ENV", "testing")
    added = CliRunner().invoke(main, ["suppressions", "add", "cli@example.com", "--expires",
                                      "9999-12-31T23:59:59-14:00"])
    assert added.exit_code == 2 and "9999" in added.output
    listed = client.get("/v1/suppressions")
    assert listed.status_code == 200 and [e["address"] for e in listed.get_json()["suppressions"]] == [
        "late@example.com"]


def test_automatic_entries_expire_after_the_setting(make_settings, smtp_server_factory, tmp_path) -> None:
    upstream = smtp_server_factory(CountingHandler(rcpt_replies={GONE: "550 5.1.1 no such user"}))
    client = direct_app(make_settings, upstream, tmp_path, gateway_suppression_expiry=3600).test_client()
    client.post("/v1/messages", json=message(GONE, FRIEND))
    [entry] = client.get("/v1/suppressions").get_json()["suppressions"]
    from datetime import datetime

    created, until = (datetime.fromisoformat(entry[k].replace("Z", "+00:00")) for k in ("created_at", "expires_at"))
    assert (until - created).total_seconds() == pytest.approx(3600)


def test_an_expiry_before_the_year_1_in_utc_is_refused_saying_so(make_settings, tmp_path) -> None:
    # It was refused as "after 9999-12-31T23:59:59Z", the fix for the other end.
    client = create_app(make_settings(gateway_store_url=f"sqlite:///{tmp_path}/store.db")).test_client()
    early = {"address": "early@example.com", "expires_at": "0001-01-01T00:00:00+00:01"}
    problem = assert_problem(client.post("/v1/suppressions", json=early), 422, "invalid-message")
    [error] = problem["errors"]
    assert error["field"] == "expires_at" and "before 0001-01-01T00:00:00Z" in error["message"], error


def test_a_past_expiry_is_refused_for_a_listed_address_too_and_its_entry_is_left_as_it_was(make_settings, tmp_path,
                                                                                         monkeypatch) -> None:
    # For an address already listed it was taken: answered 201, the past expiry dropped and the entry's reason and
    # note replaced; for a new one it was refused, after the expired entry had been written.
    client = create_app(make_settings(gateway_store_url=f"sqlite:///{tmp_path}/store.db")).test_client()
    listed = {"address": "listed@example.com", "reason": "unsubscribe", "detail": "asked by phone"}
    assert client.post("/v1/suppressions", json=listed).status_code == 201
    for address in ("listed@example.com", "new@example.com"):
        answer = client.post("/v1/suppressions", json={"address": address, "expires_at": "2000-01-01T00:00:00Z"})
        problem = assert_problem(answer, 422, "invalid-message")
        [error] = problem["errors"]
        assert error["field"] == "expires_at" and "in the past" in error["message"], problem
    monkeypatch.setenv("GATEWAY_STORE_URL", f"sqlite:///{tmp_path}/store.db")
    monkeypatch.setenv("GATEWAY_ENV", "testing")
    added = CliRunner().invoke(main, ["suppressions", "add", "listed@example.com", "--expires", "2000-01-01"])
    assert added.exit_code == 2 and "--expires is in the past" in added.output, added.output
    [entry] = client.get("/v1/suppressions").get_json()["suppressions"]
    assert (entry["address"], entry["reason"], entry["detail"]) == ("listed@example.com", "unsubscribe",
                                                                    "asked by phone")


def test_the_cli_adds_lists_and_removes(make_settings, store_url, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("GATEWAY_STORE_URL", store_url)
    monkeypatch.setenv("GATEWAY_ENV", "testing")
    runner = CliRunner()
    added = runner.invoke(main, ["suppressions", "add", "Bob@EXAMPLE.com", "--reason", "complaint"])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(main, ["suppressions", "list"])
    assert "Bob@EXAMPLE.com  complaint  api" in listed.output and "1 suppressed" in listed.output
    assert runner.invoke(main, ["suppressions", "list", "--reason", "manual"]).output.startswith("-- 0 ")
    missing = runner.invoke(main, ["suppressions", "remove", "bob@example.com"])
    assert missing.exit_code == 1 and "not on the suppression list" in missing.output
    assert runner.invoke(main, ["suppressions", "remove", "Bob@example.COM"]).exit_code == 0
    assert "-- 0 suppressed" in runner.invoke(main, ["suppressions", "list"]).output
    bad = runner.invoke(main, ["suppressions", "add", "nobody"])
    assert bad.exit_code == 2 and "not an email address" in bad.output


def test_a_send_through_the_library_names_suppressed_recipients(make_settings, smtp_server_factory,
                                                                tmp_path) -> None:
    upstream = smtp_server_factory(CountingHandler())
    app = direct_app(make_settings, upstream, tmp_path)
    client = app.test_client()
    assert client.post("/v1/suppressions", json={"address": GONE}).status_code == 201
    sender = MailGateway.state(app).sender
    result = sender.send(sender.parse(message(GONE, FRIEND)), via="library")
    assert statuses(result.to_dict()) == {GONE: "suppressed", FRIEND: "accepted"}
    wait_until(lambda: len(upstream.messages) == 1, "the message reached the upstream")


def test_the_openapi_document_describes_suppressed_results_and_the_routes(make_settings, smtp_server_factory,
                                                                        tmp_path) -> None:
    from jsonschema import Draft202012Validator

    upstream = smtp_server_factory(CountingHandler())
    client = direct_app(make_settings, upstream, tmp_path).test_client()
    document = client.get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    for name in ("OutcomeState", "RecipientState", "MessageState", "QueuedRecipientState"):
        assert "suppressed" in schemas[name]["enum"], name
    assert set(document["paths"]["/v1/suppressions"]) == {"get", "post"}
    assert "delete" in document["paths"]["/v1/suppressions/{address}"]
    assert "recipients-suppressed" in str(document["paths"]["/v1/messages"]["post"]["responses"]["422"])

    assert client.post("/v1/suppressions", json={"address": GONE}).status_code == 201
    answer = client.post("/v1/messages", json=message(GONE, FRIEND)).get_json()
    schema = {**schemas["SendResponse"], "components": document["components"]}
    assert [e.message for e in Draft202012Validator(schema).iter_errors(answer)] == []


def test_queued_acceptance_answers_suppressed_recipients_and_stores_none_of_them(make_settings,
                                                                                smtp_server_factory,
                                                                                queued_apps) -> None:
    handler = CountingHandler()
    upstream = smtp_server_factory(handler)
    queued = queued_app(make_settings, **upstream.queued_settings())
    queued_apps.append(queued)
    assert queued.client.post("/v1/suppressions", json={"address": GONE}).status_code == 201
    accepted = queued.send(message(GONE, FRIEND))
    assert statuses(accepted) == {FRIEND: "queued", GONE: "suppressed"}
    done = queued.wait_status(accepted["id"], "delivered")
    assert statuses(done) == {FRIEND: "delivered"}

    refused = queued.client.post("/v1/messages", json=message(GONE))
    assert assert_problem(refused, 422, "recipients-suppressed")["recipients"][0]["status"] == "suppressed"
    assert queued.client.get("/v1/messages").get_json()["total"] == 1
    assert handler.offered == [FRIEND]


def test_the_extension_leaves_suppressed_results_and_raises_what_smtplib_callers_catch(
        make_settings, smtp_server_factory, tmp_path) -> None:
    import smtplib

    from flask import Flask
    from flask_mailman import EmailMessage

    upstream = smtp_server_factory(CountingHandler())
    app = Flask(__name__)
    MailGateway(app, settings=make_settings(**upstream.settings(gateway_store_url=f"sqlite:///{tmp_path}/s.db")))
    state = MailGateway.state(app)
    state.store.write(lambda conn: suppressions.add(conn, GONE, "manual", source="api"))
    with app.app_context():
        both = EmailMessage("Hi", "Body", "app@example.com", [GONE, FRIEND])
        assert both.send() == 1
        assert {r.email: r.status for r in both.gateway_status.recipients} == {GONE: "suppressed", FRIEND: "accepted"}
        with pytest.raises(smtplib.SMTPRecipientsRefused) as raised:
            EmailMessage("Hi", "Body", "app@example.com", [GONE]).send()
    assert dict(raised.value.recipients.items()) == {GONE: (-1, b"on the suppression list")}
    assert upstream.handler.offered == [FRIEND]


def test_the_ingress_says_which_recipients_are_suppressed(ingress_factory, smtp_server_factory, tmp_path) -> None:
    from mail_gateway.store.database import Store

    handler = CountingHandler()
    upstream = smtp_server_factory(handler)
    store_url = f"sqlite:///{tmp_path}/s.db"
    store = Store(store_url).open()
    store.write(lambda conn: suppressions.add(conn, GONE, "manual", source="api"))
    ingress = ingress_factory(gateway_store_url=store_url, **upstream.settings())
    data = b"From: app@example.com\r\nTo: friend@example.com\r\nSubject: Hi\r\n\r\nHello.\r\n"
    with ingress.client() as client:
        client.ehlo()
        client.mail("app@example.com")
        client.rcpt(GONE)
        client.rcpt(FRIEND)
        code, reply = client.data(data)
        assert code == 250 and b"<gone@example.com> is on the suppression list" in reply
        client.mail("app@example.com")
        client.rcpt(GONE)
        code, reply = client.data(data)
    assert code == 550 and b"suppression list" in reply and b"upstream" not in reply
    assert handler.offered == [FRIEND]


def test_expired_entries_are_ignored_then_purged_when_the_list_next_changes(make_settings, smtp_server_factory,
                                                                          tmp_path) -> None:
    from sqlalchemy import select

    from mail_gateway.store.schema import suppressions as table

    handler = CountingHandler(rcpt_replies={GONE: "550 5.1.1 no such user"})
    upstream = smtp_server_factory(handler)
    app = direct_app(make_settings, upstream, tmp_path)
    store = MailGateway.state(app).store
    store.write(lambda conn: suppressions.add(conn, FRIEND, "hard-bounce", source="smtp", expires_at=1.0))
    client = app.test_client()
    assert client.get("/v1/suppressions").get_json()["suppressions"] == []
    assert statuses(client.post("/v1/messages", json=message(FRIEND, GONE)).get_json()) == {
        FRIEND: "accepted", GONE: "rejected"}
    rows = store.read(lambda conn: conn.execute(select(table.c.email)).scalars().all())
    assert rows == [GONE]


def test_a_queued_accept_reads_the_list_in_the_transaction_that_stores_the_message(make_settings, store_url,
                                                                                    queued_apps) -> None:
    queued = queued_app(make_settings, workers=False, gateway_store_url=store_url)
    queued_apps.append(queued)
    assert queued.client.post("/v1/suppressions", json={"address": GONE}).status_code == 201
    begun: list[object] = []
    engine = MailGateway.state(queued.app).store.engine

    def count(conn: object) -> None:
        begun.append(conn)

    sqlalchemy.event.listen(engine, "begin", count)
    try:
        accepted = queued.send(message(GONE, FRIEND))
    finally:
        sqlalchemy.event.remove(engine, "begin", count)
    assert statuses(accepted) == {FRIEND: "queued", GONE: "suppressed"}
    assert len(begun) == 1, f"{len(begun)} store transactions for one accepted message"


def test_a_suppression_another_process_records_holds_for_the_next_queued_accept(make_settings, store_url,
                                                                                 queued_apps) -> None:
    queued = queued_app(make_settings, workers=False, gateway_store_url=store_url)
    queued_apps.append(queued)
    assert statuses(queued.send(message(GONE, FRIEND))) == {GONE: "queued", FRIEND: "queued"}
    other = create_app(make_settings(gateway_store_url=store_url, gateway_delivery="queued")).test_client()
    assert other.post("/v1/suppressions", json={"address": GONE}).status_code == 201
    assert statuses(queued.send(message(GONE, FRIEND))) == {FRIEND: "queued", GONE: "suppressed"}
    refused = queued.client.post("/v1/messages", json=message(GONE))
    assert_problem(refused, 422, "recipients-suppressed")
    assert queued.client.get("/v1/messages").get_json()["total"] == 2


def test_a_direct_gateway_sees_the_store_file_another_process_makes(make_settings, smtp_server_factory,
                                                                    tmp_path) -> None:
    handler = CountingHandler()
    upstream = smtp_server_factory(handler)
    app = direct_app(make_settings, upstream, tmp_path)
    client, suppressions_of_app = app.test_client(), Runtime.of(app).sender.suppressions
    now = [1000.0]
    suppressions_of_app.clock = lambda: now[0]
    assert statuses(client.post("/v1/messages", json=message(GONE, FRIEND)).get_json()) == {
        GONE: "accepted", FRIEND: "accepted"}
    assert not (tmp_path / "store.db").exists()
    other = create_app(make_settings(gateway_store_url=f"sqlite:///{tmp_path}/store.db")).test_client()
    assert other.post("/v1/suppressions", json={"address": GONE}).status_code == 201
    now[0] += FILE_LOOK_SECONDS
    assert statuses(client.post("/v1/messages", json=message(GONE, FRIEND)).get_json()) == {
        FRIEND: "accepted", GONE: "suppressed"}
    assert handler.offered == [GONE, FRIEND, FRIEND]


def test_a_direct_gateway_looks_for_a_store_file_at_most_once_a_second(make_settings, smtp_server_factory,
                                                                       tmp_path, monkeypatch) -> None:
    """Each look is a stat, which lets go of the GIL: under the threaded server, one per message cost more than
    the look (docs/suppression.md)."""
    upstream = smtp_server_factory(CountingHandler())
    app = direct_app(make_settings, upstream, tmp_path)
    client, store_file = app.test_client(), str(tmp_path / "store.db")
    now = [1000.0]
    Runtime.of(app).sender.suppressions.clock = lambda: now[0]
    looks: list[str] = []
    exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda path: looks.append(os.fspath(path)) or exists(path))
    for _ in range(20):
        assert client.post("/v1/messages", json=message(FRIEND)).status_code == 202
    assert looks.count(store_file) == 1, f"{looks.count(store_file)} looks for the store file for 20 messages"
    now[0] += FILE_LOOK_SECONDS
    assert client.post("/v1/messages", json=message(FRIEND)).status_code == 202
    assert looks.count(store_file) == 2


def test_a_direct_gateway_reads_the_list_once_a_second_not_once_per_message(make_settings, smtp_server_factory,
                                                                             tmp_path) -> None:
    """What this process adds holds from its next message on; what another process adds, within a second."""
    handler = CountingHandler()
    app = direct_app(make_settings, smtp_server_factory(handler), tmp_path)
    client, store = app.test_client(), Runtime.of(app).store
    now = [1000.0]
    Runtime.of(app).sender.suppressions.clock = lambda: now[0]
    assert client.post("/v1/suppressions", json={"address": GONE}).status_code == 201
    reads: list[str] = []
    sqlalchemy.event.listen(store.engine, "before_cursor_execute",
                            lambda conn, cursor, statement, *rest: reads.append(statement)
                            if statement.lstrip().upper().startswith("SELECT") and "suppressions" in statement
                            else None)
    for _ in range(20):
        assert statuses(client.post("/v1/messages", json=message(GONE, FRIEND)).get_json()) == {
            FRIEND: "accepted", GONE: "suppressed"}
    assert len(reads) == 1, f"{len(reads)} reads of the suppression list for 20 messages"
    assert client.delete(f"/v1/suppressions/{GONE}").status_code == 204
    assert statuses(client.post("/v1/messages", json=message(GONE)).get_json()) == {GONE: "accepted"}
    other = create_app(make_settings(gateway_store_url=f"sqlite:///{tmp_path}/store.db")).test_client()
    assert other.post("/v1/suppressions", json={"address": FRIEND}).status_code == 201
    assert statuses(client.post("/v1/messages", json=message(FRIEND)).get_json()) == {FRIEND: "accepted"}
    now[0] += LIST_FRESH_SECONDS
    assert_problem(client.post("/v1/messages", json=message(FRIEND)), 422, "recipients-suppressed")
    assert handler.offered == [FRIEND] * 20 + [GONE, FRIEND]


def test_a_keyed_queued_accept_leaves_out_suppressed_recipients_and_replays_the_answer(make_settings,
                                                                                      queued_apps) -> None:
    queued = queued_app(make_settings, workers=False)
    queued_apps.append(queued)
    assert queued.client.post("/v1/suppressions", json={"address": GONE}).status_code == 201
    first = queued.send(message(GONE, FRIEND), **{"Idempotency-Key": "once"})
    assert statuses(first) == {FRIEND: "queued", GONE: "suppressed"}
    assert queued.send(message(GONE, FRIEND), **{"Idempotency-Key": "once"}) == first
    refused = queued.client.post("/v1/messages", json=message(GONE), headers={"Idempotency-Key": "all"})
    assert_problem(refused, 422, "recipients-suppressed")
    assert statuses(queued.status(first["id"])) == {FRIEND: "queued"}
    assert queued.client.get("/v1/messages").get_json()["total"] == 1


@pytest.mark.parametrize(("listed", "sent"), [("a\u0301@example.com", "a\u0301@example.com"),
                                              ("a\u0301@example.com", "\u00e1@example.com"),
                                              ("\u00e1@example.com", "a\u0301@example.com")],
                         ids=["decomposed-both", "decomposed-listed", "decomposed-sent"])
def test_an_address_is_suppressed_whatever_unicode_form_its_local_part_is_written_in(make_settings, tmp_path, listed,
                                                                                      sent) -> None:
    # A send normalizes a local part to NFC (RFC 6532), and the list kept the decomposed form given it: the
    # listed address was sent to.
    app = create_app(make_settings(mail_backend="memory", gateway_store_url=f"sqlite:///{tmp_path}/store.db"))
    client = app.test_client()
    assert client.post("/v1/suppressions", json={"address": listed}).status_code == 201
    answer = client.post("/v1/messages", json={"from": "app@example.com", "to": [sent], "subject": "x", "text": "y"})
    assert_problem(answer, 422, "recipients-suppressed")
    assert Runtime.of(app).backend.messages == []


def test_an_entry_listed_decomposed_before_keys_were_in_nfc_still_holds_and_can_be_removed(make_settings,
                                                                                          tmp_path) -> None:
    app = create_app(make_settings(mail_backend="memory", gateway_store_url=f"sqlite:///{tmp_path}/store.db"))
    store = Runtime.of(app).store
    store.open()
    with store.engine.begin() as conn:  # as an earlier release keyed it: the local part as given
        conn.execute(sqlalchemy.insert(sqlalchemy.table("suppressions", sqlalchemy.column("address"),
                                                        sqlalchemy.column("email"), sqlalchemy.column("reason"),
                                                        sqlalchemy.column("source"), sqlalchemy.column("created_at"))),
                     {"address": "a\u0301@example.com", "email": "a\u0301@example.com", "reason": "manual",
                      "source": "api", "created_at": 0.0})
    # It holds as it did, for the form it was listed in (an upgrade lists nothing anew).
    assert store.read(lambda conn: suppressions.suppressed(conn, ["a\u0301@example.com", "\u00e1@example.com"])) == {
        "a\u0301@example.com"}
    client = app.test_client()
    assert client.delete("/v1/suppressions/a\u0301@example.com").status_code == 204
    assert store.read(lambda conn: suppressions.suppressed(conn, ["a\u0301@example.com"])) == set()

