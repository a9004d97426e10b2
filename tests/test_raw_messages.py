"""Messages their senders built (the raw route, the SMTP ingress), and the rules every path shares: the
Message-ID is one token or none, lines are at most 998 octets, MIME parts nest at most 100 deep, blind copies are
not shown to the other recipients, and each recipient mailbox gets one RCPT TO."""

from __future__ import annotations

import base64
import email.policy
import logging
import smtplib

import pytest
from api_helpers import HELLO, assert_problem, deeply_nested, outbox
from flask_mailman import EmailMessage
from ingress_support import DEADLINE_SECONDS
from queue_support import queued_app
from smtp_server import HOST

from mail_gateway import create_app
from mail_gateway.backends.registry import create_backend

FORGED = "delivery via=http message_id=<x@y> backend=smtp outcome=accepted"



def raw(client, data: bytes, rcpt_to: list[str] | None = None):
    return client.post("/v1/messages/raw", json={"mail_from": "app@example.com",
                                                 "rcpt_to": rcpt_to or ["friend@example.com"],
                                                 "data": base64.b64encode(data).decode()})


# -- 3. the Message-ID read from a message ------------------------------------------------------------------

def test_a_message_id_with_a_continuation_line_is_not_one_and_forges_nothing(smtp_server, make_settings,
                                                                             caplog) -> None:
    app = create_app(make_settings(**smtp_server.settings()))
    data = f"From: app@example.com\r\nMessage-ID: <a@example.com>\r\n {FORGED}\r\nSubject: x\r\n\r\nhi\r\n".encode()
    with caplog.at_level(logging.INFO, logger="mail_gateway.delivery"):
        response = raw(app.test_client(), data)
    assert response.status_code == 202
    assert response.get_json()["message_id"] == ""  # treated as absent: not reported, not doubled
    [record] = [r for r in caplog.records if r.name == "mail_gateway.delivery"]
    assert record.delivery["message_id"] is None and "outcome=accepted" not in record.getMessage().split("backend=")[0]
    assert FORGED not in record.getMessage() and "\n" not in record.getMessage()
    [received] = smtp_server.messages
    assert received.data.count(b"Message-ID:") == 1  # the message itself is left as its sender wrote it


def test_a_relayed_message_id_with_a_continuation_line_is_not_echoed(ingress_factory, caplog) -> None:
    ingress = ingress_factory(mail_backend="memory")
    data = f"From: app@example.com\r\nMessage-ID: <a@example.com>\r\n\t{FORGED}\r\n\r\nhi\r\n".encode()
    with caplog.at_level(logging.INFO, logger="mail_gateway.delivery"), ingress.client() as client:
        client.ehlo()
        client.mail("app@example.com")
        client.rcpt("friend@example.com")
        code, reply = client.data(data)
    assert code == 250 and b"delivery via" not in reply and b"<a@example.com>" not in reply
    assert FORGED not in caplog.text


def test_a_message_id_folded_before_its_one_token_is_still_read(make_settings) -> None:
    app = create_app(make_settings(mail_backend="memory"))
    response = raw(app.test_client(), b"From: app@example.com\r\nMessage-ID:\r\n <a@example.com>\r\n\r\nhi\r\n")
    assert response.get_json()["message_id"] == "<a@example.com>"


# -- 5. one line-length rule -------------------------------------------------------------------------------

@pytest.mark.parametrize(("octets", "accepted"), [(998, True), (999, False), (5000, False)])
def test_the_raw_route_refuses_lines_over_998_octets_naming_the_line(make_settings, octets, accepted) -> None:
    app = create_app(make_settings(mail_backend="memory"))
    response = raw(app.test_client(), b"From: app@example.com\r\nSubject: x\r\n\r\nfirst\r\n" + b"y" * octets + b"\r\n")
    if accepted:
        assert response.status_code == 202
        return
    assert response.status_code == 422
    [error] = response.get_json()["errors"]
    assert error["field"] == "data" and f"line 5 is {octets} octets" in error["message"] and "998" in error["message"]


def test_the_ingress_holds_the_same_998_octet_rule(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory")
    with ingress.client() as client:
        assert client.sendmail("app@example.com", ["friend@example.com"],
                               b"Subject: x\r\n\r\n" + b"y" * 998 + b"\r\n") == {}
        with pytest.raises(smtplib.SMTPDataError) as caught:
            client.sendmail("app@example.com", ["friend@example.com"], b"Subject: x\r\n\r\n" + b"y" * 999 + b"\r\n")
    assert caught.value.smtp_code == 554 and b"line 3 is 999 octets" in caught.value.smtp_error
    assert len(ingress.backend.messages) == 1


@pytest.mark.parametrize("length", [998, 16_384])
def test_composed_messages_keep_every_line_within_998_octets(smtp_server, make_settings, length) -> None:
    app = create_app(make_settings(**smtp_server.settings()))
    message = {**HELLO, "subject": "s" * length, "headers": {"X-Long": "h" * length}, "tags": ["t" * 128] * 8,
               "from": f'"{"n" * 990}" <app@example.com>', "text": "w" * 3000}
    assert app.test_client().post("/v1/messages", json=message).status_code == 202
    [received] = smtp_server.messages
    assert max(len(line) for line in received.data.split(b"\r\n")) <= 998
    assert email.message_from_bytes(received.data, policy=email.policy.default)["Subject"] == "s" * length


def test_a_long_threads_references_are_folded_and_arrive_whole(smtp_server, make_settings) -> None:
    # 120 Message-IDs, 4,000 characters: refused as longer than a line before, though the composer folds it.
    references = " ".join(f"<thread-{n:04d}.reply@mail.example.com>" for n in range(120))
    app = create_app(make_settings(**smtp_server.settings()))
    response = app.test_client().post("/v1/messages", json={**HELLO, "headers": {"References": references}})
    assert response.status_code == 202, response.get_data(as_text=True)
    [received] = smtp_server.messages
    assert max(len(line) for line in received.data.split(b"\r\n")) <= 998
    assert email.message_from_bytes(received.data, policy=email.policy.default)["References"].split() == \
        references.split()


# -- 5b. how deeply MIME parts nest ---------------------------------------------------------------------------
# Postfix refuses mail nested past mime_nesting_limit (100); 500 levels (33 KB) were taken and kept, and the
# standard library's parser, reading them back, recursed past its limit.

FIX = "nest MIME parts at most 100 deep"


@pytest.mark.parametrize("within", ["multipart", "message"])
@pytest.mark.parametrize(("depth", "accepted"), [(100, True), (101, False), (500, False)])
def test_the_raw_route_refuses_mime_parts_nested_over_100_deep(make_settings, within, depth, accepted) -> None:
    app = create_app(make_settings(mail_backend="memory"))
    response = raw(app.test_client(), deeply_nested(depth, within))
    if accepted:
        assert response.status_code == 202 and len(outbox(app)) == 1
        return
    [error] = assert_problem(response, 422)["errors"]
    assert error["field"] == "data" and "nest more than 100 deep" in error["message"] and FIX in error["message"]
    assert outbox(app) == []


def test_queued_the_raw_route_refuses_them_before_storing_them(queued_apps, make_settings, smtp_server) -> None:
    queued = queued_app(make_settings, workers=False, **smtp_server.queued_settings())
    queued_apps.append(queued)
    [error] = assert_problem(raw(queued.client, deeply_nested(101)), 422)["errors"]
    assert error["field"] == "data" and FIX in error["message"]
    assert queued.client.get("/v1/messages").get_json()["total"] == 0
    assert raw(queued.client, deeply_nested(100)).status_code == 202
    assert queued.client.get("/v1/messages").get_json()["total"] == 1


@pytest.mark.parametrize(("depth", "accepted"), [(98, True), (99, False)])
def test_a_message_attached_to_a_composed_one_is_held_to_the_same_depth(make_settings, depth, accepted) -> None:
    # Composed, it is two levels further down: the multipart/mixed around text and attachment, its message part.
    app = create_app(make_settings(mail_backend="memory"))
    attached = {"filename": "forwarded.eml", "content_type": "message/rfc822",
                "content": base64.b64encode(deeply_nested(depth)).decode()}
    response = app.test_client().post("/v1/messages", json={**HELLO, "attachments": [attached]})
    if accepted:
        assert response.status_code == 202 and len(outbox(app)) == 1
        return
    [error] = assert_problem(response, 422)["errors"]
    assert error["field"] == "attachments" and FIX in error["message"]
    assert outbox(app) == []


def test_the_ingress_refuses_them_after_data_with_554_5_6_0(smtp_server, ingress_factory) -> None:
    ingress = ingress_factory(**smtp_server.settings())
    with ingress.client() as client:
        with pytest.raises(smtplib.SMTPDataError) as caught:
            client.sendmail("app@example.com", ["friend@example.com"], deeply_nested(101))
        assert client.sendmail("app@example.com", ["friend@example.com"], deeply_nested(100)) == {}
    assert caught.value.smtp_code == 554
    assert caught.value.smtp_error.startswith(b"5.6.0 The message cannot be relayed: its MIME parts nest more than "
                                              b"100 deep") and FIX.encode() in caught.value.smtp_error
    [delivered] = smtp_server.messages
    assert delivered.data.count(b"Content-Type: multipart/mixed") == 100


# -- 6. blind copies and duplicate recipients --------------------------------------------------------------

def test_the_raw_route_strips_bcc_and_sends_one_rcpt_per_mailbox(smtp_server, make_settings) -> None:
    app = create_app(make_settings(**smtp_server.settings()))
    data = (b"From: app@example.com\r\nTo: friend@example.com\r\nBcc: secret@example.com,\r\n other@example.com\r\n"
            b"resent-bcc: hidden@example.com\r\nSubject: x\r\n\r\nBcc: in the body stays\r\n")
    response = raw(app.test_client(), data, ["friend@example.com", "Friend@EXAMPLE.com", "friend@example.com",
                                             "secret@example.com"])
    assert response.status_code == 202
    assert [r["email"] for r in response.get_json()["recipients"]] == ["friend@example.com", "Friend@example.com",
                                                                      "secret@example.com"]
    [received] = smtp_server.messages
    assert received.rcpt_tos == ["friend@example.com", "Friend@example.com", "secret@example.com"]
    assert b"secret@example.com" not in received.data and b"other@example.com" not in received.data
    assert b"hidden@example.com" not in received.data and b"Bcc: in the body stays" in received.data
    assert b"To: friend@example.com\r\n" in received.data and b"Subject: x\r\n" in received.data


def test_the_ingress_strips_bcc_and_sends_one_rcpt_per_mailbox(smtp_server, ingress_factory) -> None:
    ingress = ingress_factory(**smtp_server.settings())
    data = b"From: app@example.com\r\nTo: friend@example.com\r\nBCC: secret@example.com\r\nSubject: x\r\n\r\nhi\r\n"
    with smtplib.SMTP(HOST, ingress.port, timeout=DEADLINE_SECONDS) as client:
        client.sendmail("app@example.com", ["friend@example.com", "friend@Example.COM", "friend@example.com",
                                            "secret@example.com"], data)
    [received] = smtp_server.messages
    assert received.rcpt_tos == ["friend@example.com", "secret@example.com"]
    assert b"secret@example.com" not in received.data and b"To: friend@example.com" in received.data


def test_library_messages_send_one_rcpt_per_mailbox_and_no_bcc_header(smtp_server, make_settings) -> None:
    backend = create_backend(make_settings(**smtp_server.settings()))
    message = EmailMessage("Hi", "body", "app@example.com", ["bob@example.com", "bob@EXAMPLE.com"],
                           bcc=["Bob@example.com", "bob@Example.com"], headers={"Bcc": "bob@example.com"})
    [result] = backend.send_messages([message])
    [received] = smtp_server.messages
    assert received.rcpt_tos == ["bob@example.com", "Bob@example.com"] and len(result.recipients) == 2
    assert b"Bcc" not in received.data
    backend.close()


@pytest.mark.parametrize("null", ["", "<>"])
def test_a_raw_message_with_the_null_sender_goes_out_with_mail_from_empty(smtp_server, make_settings, null) -> None:
    # A bounce, a DSN or an auto-reply has the null sender (RFC 5321 4.5.5), as the docs say the raw route takes it;
    # it was refused as "not one email address".
    client = create_app(make_settings(**smtp_server.settings())).test_client()
    data = b"From: MAILER-DAEMON@example.com\r\nSubject: Undelivered\r\n\r\nIt bounced.\r\n"
    answer = client.post("/v1/messages/raw", json={"mail_from": null, "rcpt_to": ["friend@example.com"],
                                                   "data": base64.b64encode(data).decode()})
    assert answer.status_code == 202, answer.get_json()
    [received] = smtp_server.messages
    assert received.mail_from in ("", "<>") and received.rcpt_tos == ["friend@example.com"]
    refused = assert_problem(client.post("/v1/messages/raw", json={
        "mail_from": "not an address", "rcpt_to": ["friend@example.com"], "data": base64.b64encode(data).decode()}),
        422)
    assert [e["field"] for e in refused["errors"]] == ["mail_from"]
