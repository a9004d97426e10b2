"""Addresses mean what they show: comments are dropped, never promoted to display names, and the outbox reads
address headers with the sender's own parser, listing each recipient under the header it came from."""

from __future__ import annotations

import base64

import pytest
from api_helpers import HELLO, outbox, parsed

from mail_gateway import create_app

ENCODED_WORD_NAMES = [
    ("=?utf-8?q?Smith=2C_Ann?= <ann@example.com>", '"Smith, Ann" <ann@example.com>'),
    ("=?utf-8?q?Ann_=3Cmallory=40evil=2Ecom=3E?= <ann@example.com>", '"Ann <mallory@evil.com>" <ann@example.com>'),
    ("=?utf-8?b?QW5uLCBCb2IgPGV2ZUBldmlsLmNvbT4=?= <ann@example.com>", '"Ann, Bob <eve@evil.com>" <ann@example.com>'),
    ('"J\\"o, e" <ann@example.com>', '"J\\"o, e" <ann@example.com>'),
]


@pytest.fixture
def app(make_settings):
    return create_app(make_settings(mail_backend="memory"))


@pytest.mark.parametrize(("given", "address"), [
    ("a(b@evil.com)@example.com", "a@example.com"),
    ("a@example.com (b@evil.com)", "a@example.com"),
    ("Ann (The CEO <ceo@evil.com>) <a@example.com>", "Ann <a@example.com>"),
])
def test_comments_are_dropped_not_promoted_to_display_names(app, given, address) -> None:
    response = app.test_client().post("/v1/messages", json={**HELLO, "from": given, "to": [given]})
    assert response.status_code == 202, response.get_json()
    message = parsed(outbox(app)[0])
    for header in ("From", "To"):
        assert str(message[header]) == address
        assert "evil" not in message[header].addresses[0].display_name
    assert outbox(app)[0].recipients == ("a@example.com",)


@pytest.mark.parametrize(("header", "shown"), ENCODED_WORD_NAMES)
def test_the_outbox_lists_each_recipient_once_under_its_own_header(app, header, shown) -> None:
    data = f"From: app@example.com\r\nTo: {header}\r\nCc: Bob <bob@xn--fa-hia.de>\r\nSubject: x\r\n\r\nhi\r\n"
    client = app.test_client()
    response = client.post("/v1/messages/raw", json={
        "mail_from": "app@example.com", "rcpt_to": ["ann@example.com", "bob@faß.de", "hidden@example.com"],
        "data": base64.b64encode(data.encode()).decode()})
    assert response.status_code == 202
    [summary] = client.get("/v1/outbox").get_json()["messages"]
    detail = client.get(f"/v1/outbox/{summary['id']}").get_json()
    assert detail["to"] == [shown] and detail["cc"] == ["Bob <bob@xn--fa-hia.de>"]
    assert detail["bcc"] == ["hidden@example.com"]  # the real To and Cc recipients are not blind copies
    assert client.get("/v1/outbox", query_string={"to": "mallory"}).get_json()["total"] == \
        (1 if "mallory" in shown else 0)


def test_the_test_fixture_reads_recipients_with_the_same_parser() -> None:
    from mail_gateway.testing.captured import SentMessage

    data = b"From: app@example.com\r\nTo: =?utf-8?q?Smith=2C_Ann?= <ann@example.com>\r\nSubject: x\r\n\r\nhi\r\n"
    message = SentMessage(data, ("ann@example.com",))
    assert message.to == ['"Smith, Ann" <ann@example.com>'] and message.bcc == []


@pytest.mark.parametrize(("given", "shown"), [
    ("no-reply@localhost", "no-reply@localhost"),  # Flask-Security-Too's default sender
    ("IT Desk <it@Corp.LOCAL>", "IT Desk <it@corp.local>"),
    ("qa@shop.example.test", "qa@shop.example.test"),
    ("root@mailhost", "root@mailhost"),
    ("jörg@bücher.local", "jörg@bücher.local"),
])
def test_an_address_at_a_local_network_or_test_domain_is_sent_as_flask_mail_sends_it(app, given, shown) -> None:
    response = app.test_client().post("/v1/messages", json={**HELLO, "to": [given]})
    assert response.status_code == 202, response.json
    assert parsed(outbox(app)[0])["To"] == shown


@pytest.mark.parametrize("given", ["a@x.invalid", "a@invalid", "a@hidden.onion", "a@1.0.0.127.in-addr.arpa",
                                   "a@-bad-.local", "a@[127.0.0.1]", "a@10.0.0.1"])
def test_a_domain_that_cannot_be_meant_is_still_refused_naming_the_field(app, given) -> None:
    response = app.test_client().post("/v1/messages", json={**HELLO, "to": [given]})
    assert response.status_code == 422 and response.json["errors"][0]["field"].startswith("to")


@pytest.mark.parametrize("field", ["from", "to", "cc", "reply_to"])
def test_an_address_longer_than_a_header_line_is_refused_before_it_is_parsed(app, field) -> None:
    # The standard library's parser takes time quadratic in such a value's length: a 16 KB one of ". " took 1.3 s
    # to be refused, a 64 KB one 19 s, on every request. Refused by its length, it is not parsed.
    value = ". " * 8000 + "<x@example.com>"
    body = {**HELLO, field: value if field == "from" else [value]}
    response = app.test_client().post("/v1/messages", json=body)
    assert response.status_code == 422, response.get_json()
    [error] = response.get_json()["errors"]
    assert error["field"] == (field if field == "from" else f"{field}[0]")
    assert "16015 characters long" in error["message"] and "(2000, display name included)" in error["message"]
    assert outbox(app) == []
    longest = "Ann " + "x" * 976 + " <a@example.com>"  # 996 characters: read, and sent
    assert app.test_client().post("/v1/messages", json={**HELLO, field: longest if field == "from" else [longest]}
                                  ).status_code == 202
