"""A 422 for recipients the upstream refused or the suppression list holds names each one's request field
(``to[0]``, ``cc[0]``, ``rcpt_to[1]``) and its fix in ``errors``, as every other 422 does, beside each recipient's
outcome in ``recipients``: for one message, an item of a batch and a raw message, delivered directly or queued."""

from __future__ import annotations

import base64
from typing import Any

from api_helpers import assert_problem, fields
from queue_support import queued_app
from smtp_server import FaultHandler

from mail_gateway import create_app

GONE = "gone@example.com"
LOST = "lost@example.com"
FRIEND = "friend@example.com"
NO_SUCH_USER = "550 5.1.1 no such user here"


def message(**lists: list[str]) -> dict[str, Any]:
    return {"from": "app@example.com", "subject": "Hello", "text": "Hi.", **lists}


def raw(*rcpt_to: str) -> dict[str, Any]:
    data = b"From: app@example.com\r\nTo: friend@example.com\r\nSubject: Hello\r\n\r\nHi.\r\n"
    return {"mail_from": "app@example.com", "rcpt_to": list(rcpt_to), "data": base64.b64encode(data).decode()}


def test_recipients_the_upstream_refuses_then_the_list_holds_are_named_by_their_fields(make_settings,
                                                                                      smtp_server_factory,
                                                                                      tmp_path) -> None:
    upstream = smtp_server_factory(FaultHandler(rcpt_replies={GONE: NO_SUCH_USER, LOST: NO_SUCH_USER}))
    client = create_app(make_settings(**upstream.settings(
        gateway_store_url=f"sqlite:///{tmp_path}/store.db"))).test_client()

    # Listed twice, in to and bcc: named once, by the field that listed it first.
    refused = assert_problem(client.post("/v1/messages", json=message(to=[GONE], cc=[LOST], bcc=[GONE])),
                             422, "recipients-refused")
    assert fields(refused) == ["to[0]", "cc[0]"]
    assert [r["email"] for r in refused["recipients"]] == [GONE, LOST]
    first = refused["errors"][0]["message"]
    assert GONE in first and "550" in first and "no such user here" in first and "check the address" in first

    # A 5.1.1 suppresses them: the next message is refused before the upstream, its fields named all the same.
    suppressed = assert_problem(client.post("/v1/messages", json=message(cc=[GONE, LOST])), 422,
                                "recipients-suppressed")
    assert fields(suppressed) == ["cc[0]", "cc[1]"]
    assert "suppression list" in suppressed["errors"][1]["message"]
    assert f"DELETE /v1/suppressions/{LOST}" in suppressed["errors"][1]["message"]

    batch = client.post("/v1/messages/batch", json={"messages": [message(to=[FRIEND]), message(bcc=[LOST])]})
    assert batch.status_code == 200
    accepted, failed = batch.get_json()["results"]
    assert accepted["status"] == "accepted" and failed["status"] == "failed"
    assert failed["error"]["type"].endswith("recipients-suppressed") and fields(failed["error"]) == ["bcc[0]"]

    raw_refused = assert_problem(client.post("/v1/messages/raw", json=raw(LOST, GONE)), 422, "recipients-suppressed")
    assert fields(raw_refused) == ["rcpt_to[0]", "rcpt_to[1]"]


def test_a_queued_accept_names_the_fields_of_suppressed_recipients(make_settings, queued_apps) -> None:
    queued = queued_app(make_settings, workers=False)
    queued_apps.append(queued)
    for address in (GONE, LOST):
        assert queued.client.post("/v1/suppressions", json={"address": address}).status_code == 201
    refused = queued.client.post("/v1/messages", json=message(to=[LOST], bcc=[GONE]),
                                 headers={"Idempotency-Key": "named"})
    body = assert_problem(refused, 422, "recipients-suppressed")
    assert fields(body) == ["to[0]", "bcc[0]"]
    replayed = queued.client.post("/v1/messages", json=message(to=[LOST], bcc=[GONE]),
                                  headers={"Idempotency-Key": "named"})
    assert fields(assert_problem(replayed, 422, "recipients-suppressed")) == ["to[0]", "bcc[0]"]
    raw_refused = assert_problem(queued.client.post("/v1/messages/raw", json=raw(GONE)), 422, "recipients-suppressed")
    assert fields(raw_refused) == ["rcpt_to[0]"]
