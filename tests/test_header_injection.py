"""No control character reaches a header: every C0 control but TAB, DEL, the C1 controls and the Unicode line and
paragraph separators are refused with 422 naming the field, in every field that becomes a header."""

from __future__ import annotations

import logging

import pytest
from api_helpers import HELLO, outbox
from flask_mailman import EmailMessage

from mail_gateway import create_app
from mail_gateway.backends.registry import create_backend
from mail_gateway.errors import InvalidMessageError

FORBIDDEN = [chr(c) for c in (*range(0x00, 0x09), *range(0x0A, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)]
ATTACHMENT = {"filename": "a.txt", "content": "QUJD"}


def _with(field: str, bad: str) -> tuple[dict, str]:
    """HELLO with ``bad`` in ``field``; the field path the 422 must name."""
    name = f"Ann{bad}Lee"
    message = {**HELLO, "cc": [], "bcc": [], "reply_to": []}
    if field in ("from", "to", "cc", "bcc", "reply_to"):
        address = f'"{name}" <ann@example.com>'
        message[field] = address if field == "from" else [address]
        return message, field if field == "from" else f"{field}[0]"
    if field == "subject":
        return {**message, "subject": name}, "subject"
    if field == "headers":
        return {**message, "headers": {"X-Campaign": name}}, "headers.X-Campaign"
    if field == "tags":
        return {**message, "tags": [name]}, "tags[0]"
    if field == "metadata":
        return {**message, "metadata": {"user": name}}, "metadata.user"
    key = "filename" if field == "filename" else "content_id"
    return {**message, "attachments": [{**ATTACHMENT, key: name}]}, f"attachments[0].{key}"


FIELDS = ["from", "to", "cc", "bcc", "reply_to", "subject", "headers", "tags", "metadata", "filename", "content_id"]


@pytest.fixture
def client(make_settings):
    app = create_app(make_settings(mail_backend="memory"))
    return app, app.test_client()


@pytest.mark.parametrize("field", FIELDS)
def test_every_control_character_is_refused_with_422_naming_the_field(client, field) -> None:
    app, http = client
    for bad in FORBIDDEN:
        message, path = _with(field, bad)
        response = http.post("/v1/messages", json=message)
        assert response.status_code == 422, (field, hex(ord(bad)), response.get_json())
        assert path in [e["field"] for e in response.get_json()["errors"]], (hex(ord(bad)), response.get_json())
    assert outbox(app) == []


def test_the_reported_vertical_tab_from_never_reaches_the_upstream(smtp_server, make_settings) -> None:
    app = create_app(make_settings(**smtp_server.settings()))
    forged = '"Alice\u000b\u000b<h1>Your account is locked…</h1>\u000b" <noreply@example.com>'
    response = app.test_client().post("/v1/messages", json={**HELLO, "from": forged})
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "from"
    assert smtp_server.messages == []


def test_a_header_name_after_a_vertical_tab_is_a_422_not_a_500(client, caplog) -> None:
    _, http = client
    with caplog.at_level(logging.ERROR):
        for field in ("from", "to", "reply_to"):
            address = '"Alice\u000bBcc: victim@example.org" <noreply@example.com>'
            value = address if field == "from" else [address]
            response = http.post("/v1/messages", json={**HELLO, field: value})
            assert response.status_code == 422, response.get_json()
    assert "Traceback" not in caplog.text and "HeaderParseError" not in caplog.text


def test_an_encoded_word_cannot_smuggle_a_control_character_into_a_name(client) -> None:
    _, http = client
    response = http.post("/v1/messages", json={**HELLO, "from": "=?utf-8?q?Ann=0BLee?= <ann@example.com>"})
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "from"


def test_tab_stays_allowed_where_rfc_5322_allows_folding_white_space(client) -> None:
    app, http = client
    response = http.post("/v1/messages", json={**HELLO, "subject": "a\tb", "headers": {"X-A": "c\td"}})
    assert response.status_code == 202
    assert b"Subject: a\tb\r\n" in outbox(app)[0].data


@pytest.mark.parametrize(("field", "value"), [
    ("subject", "Hello\u000bBcc: victim@example.org"),
    ("from_email", "Alice\u000c <noreply@example.com>"),
    ("to", ["\"Bob\u001c\" <bob@example.com>"]),
    ("headers", {"X-Campaign": "a\u2028b"}),
])
def test_library_messages_are_held_to_the_same_rule(make_settings, field, value) -> None:
    backend = create_backend(make_settings(mail_backend="memory"))
    message = EmailMessage("Hi", "body", "app@example.com", ["friend@example.com"])
    setattr(message, "extra_headers" if field == "headers" else field, value)
    with pytest.raises(InvalidMessageError, match="U\\+"):
        backend.send_messages([message])
    assert backend.messages == []
