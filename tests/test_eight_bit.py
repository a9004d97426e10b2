"""8-bit data and UTF-8 addresses go only to upstreams that announced 8BITMIME (RFC 6152) and SMTPUTF8 (RFC 6531).

Real aiosmtpd servers: without ``decode_data`` aiosmtpd announces 8BITMIME; with ``decode_data=True`` and
``enable_SMTPUTF8=False`` it announces neither and answers 500 to any octet over 127, as a strict 7-bit server
would; ``enable_SMTPUTF8`` (its Controller's default) adds SMTPUTF8.
"""

from __future__ import annotations

import base64
import email
import email.policy
import smtplib
from dataclasses import dataclass, field

import pytest
from api_helpers import HELLO
from flask_mailman import EmailMessage
from ingress_support import DEADLINE_SECONDS
from smtp_server import HOST

from mail_gateway import create_app, errors
from mail_gateway.backends.registry import create_backend

TEXT = "Grüße aus Köln — 東京"
NON_ASCII_LOCAL = "jörg@example.com"


@dataclass
class MailOptionsHandler:
    """Records each transaction: MAIL FROM's parameters and the message as it arrived."""

    transactions: list[tuple[str, list[str], list[str], bytes]] = field(default_factory=list)
    pipelining: bool = False

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server, session, envelope):
        self.transactions.append((envelope.mail_from, list(envelope.mail_options), list(envelope.rcpt_tos),
                                  envelope.original_content))
        return "250 2.0.0 OK"



def upstream(smtp_server_factory, kind: str, pipelining: bool = False):
    options = {"8bitmime": {"enable_SMTPUTF8": False}, "7bit": {"decode_data": True, "enable_SMTPUTF8": False},
               "smtputf8": {"enable_SMTPUTF8": True}}[kind]
    return smtp_server_factory(MailOptionsHandler(pipelining=pipelining), **options)


def parsed(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def test_8bit_text_to_an_8bitmime_upstream_says_body_8bitmime(smtp_server_factory, make_settings) -> None:
    server = upstream(smtp_server_factory, "8bitmime")
    app = create_app(make_settings(**server.settings()))
    assert app.test_client().post("/v1/messages", json={**HELLO, "text": TEXT}).status_code == 202
    [(_, options, _, data)] = server.handler.transactions
    assert "BODY=8BITMIME" in options and not data.isascii()
    assert parsed(data).get_content().strip() == TEXT


def test_ascii_messages_need_no_body_parameter(smtp_server_factory, make_settings) -> None:
    server = upstream(smtp_server_factory, "8bitmime")
    assert create_app(make_settings(**server.settings())).test_client().post("/v1/messages", json=HELLO).status_code \
        == 202
    [(_, options, _, data)] = server.handler.transactions
    assert data.isascii() and not any(o.startswith("BODY=") for o in options)


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-by-one", "pipelined"])
def test_8bit_text_to_a_7bit_upstream_goes_quoted_printable(smtp_server_factory, make_settings, pipelining) -> None:
    server = upstream(smtp_server_factory, "7bit", pipelining)
    app = create_app(make_settings(**server.settings()))
    response = app.test_client().post("/v1/messages", json={**HELLO, "text": TEXT, "html": f"<p>{TEXT}</p>"})
    assert response.status_code == 202, response.get_json()
    [(_, options, _, data)] = server.handler.transactions
    assert data.isascii() and not any(o.startswith("BODY=") for o in options)
    message = parsed(data)
    assert message["Message-ID"] == response.get_json()["message_id"]
    assert message.get_body(("plain",))["Content-Transfer-Encoding"] == "quoted-printable"
    assert message.get_body(("plain",)).get_content().strip() == TEXT
    assert message.get_body(("html",)).get_content().strip() == f"<p>{TEXT}</p>"


def test_a_raw_8bit_message_is_downgraded_like_postfix_does(smtp_server_factory, make_settings) -> None:
    server = upstream(smtp_server_factory, "7bit")
    raw = ("From: app@example.com\r\nTo: friend@example.com\r\nSubject: folded\r\n  subject line\r\n"
           "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\npreamble\r\n--b1\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           f"{TEXT}\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
           ).encode() + bytes(range(128, 256)) + b"\r\n--b1--\r\n"
    client = create_app(make_settings(**server.settings())).test_client()
    response = client.post("/v1/messages/raw", json={"mail_from": "app@example.com", "rcpt_to": ["friend@example.com"],
                                                      "data": base64.b64encode(raw).decode()})
    assert response.status_code == 202, response.get_json()
    [(_, _, _, data)] = server.handler.transactions
    assert data.isascii()
    assert b"Subject: folded\r\n  subject line\r\n" in data  # header fields go as they were written
    text, binary = parsed(data).iter_parts()
    assert text["Content-Transfer-Encoding"] == "quoted-printable" and text.get_content().strip() == TEXT
    assert binary["Content-Transfer-Encoding"] == "base64" and binary.get_content() == bytes(range(128, 256))


@pytest.mark.parametrize(("raw", "why"), [
    ("From: app@example.com\r\nSubject: no MIME\r\n\r\nGrüße\r\n", "without MIME headers"),
    ("From: Jörg <app@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhi\r\n", "header"),
    # A boundary given both whole and in numbered pieces: the standard library's parser raised TypeError (a 500).
    ("From: app@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary*=b; boundary*0=b\r\n"
     "\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße\r\n--b--\r\n", "pieces"),
], ids=["no-mime", "8bit-header", "parameter-in-pieces-and-whole"])
def test_a_raw_8bit_message_that_cannot_be_downgraded_is_refused(smtp_server_factory, make_settings, raw,
                                                                  why) -> None:
    server = upstream(smtp_server_factory, "7bit")
    client = create_app(make_settings(**server.settings())).test_client()
    response = client.post("/v1/messages/raw", json={"mail_from": "app@example.com", "rcpt_to": ["friend@example.com"],
                                                      "data": base64.b64encode(raw.encode()).decode()})
    assert response.status_code == 502 and response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"] == "urn:mail-gateway:problem:upstream-extension-missing" and body["extension"] == "8BITMIME"
    assert "8BITMIME" in body["detail"] and why in body["detail"]
    assert server.handler.transactions == []  # never sent as it is


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-by-one", "pipelined"])
def test_the_ingress_relays_utf8_addresses_with_smtputf8_where_the_upstream_offers_it(
        smtp_server_factory, ingress_factory, pipelining) -> None:
    server = upstream(smtp_server_factory, "smtputf8", pipelining)
    ingress = ingress_factory(**server.settings())
    data = f"From: {NON_ASCII_LOCAL}\r\nTo: {NON_ASCII_LOCAL}\r\nSubject: hi\r\n\r\n{TEXT}\r\n".encode()
    with smtplib.SMTP(HOST, ingress.port, timeout=DEADLINE_SECONDS) as client:
        assert client.sendmail(NON_ASCII_LOCAL, ["zoë@bücher.example"], data, mail_options=["SMTPUTF8"]) == {}
    [(mail_from, options, rcpt_tos, received)] = server.handler.transactions
    assert mail_from == NON_ASCII_LOCAL and rcpt_tos == ["zoë@xn--bcher-kva.example"]
    assert "SMTPUTF8" in options and "BODY=8BITMIME" in options and received == data


def test_the_ingress_refuses_utf8_addresses_clearly_when_the_upstream_lacks_smtputf8(
        smtp_server_factory, ingress_factory) -> None:
    server = upstream(smtp_server_factory, "8bitmime")
    ingress = ingress_factory(**server.settings())
    with smtplib.SMTP(HOST, ingress.port, timeout=DEADLINE_SECONDS) as client:
        with pytest.raises(smtplib.SMTPDataError) as caught:
            client.sendmail(NON_ASCII_LOCAL, ["friend@example.com"], b"Subject: hi\r\n\r\nhi\r\n",
                            mail_options=["SMTPUTF8"])
    assert caught.value.smtp_code == 554 and b"5.6.7" in caught.value.smtp_error
    assert b"SMTPUTF8" in caught.value.smtp_error
    assert server.handler.transactions == []


def test_a_library_message_to_a_utf8_address_needs_an_smtputf8_upstream(smtp_server_factory, make_settings) -> None:
    for kind, delivered in (("8bitmime", False), ("smtputf8", True)):
        server = upstream(smtp_server_factory, kind)
        backend = create_backend(make_settings(**server.settings()))
        message = EmailMessage("Hi", TEXT, "app@example.com", [NON_ASCII_LOCAL])
        if delivered:
            backend.send_messages([message])
            [(_, options, rcpt_tos, _)] = server.handler.transactions
            assert "SMTPUTF8" in options and rcpt_tos == [NON_ASCII_LOCAL]
        else:
            with pytest.raises(errors.DeliveryError, match="SMTPUTF8"):
                backend.send_messages([message])
            assert server.handler.transactions == []
        backend.close()


def test_utf8_header_text_says_smtputf8_where_the_upstream_offers_it(smtp_server_factory, make_settings) -> None:
    server = upstream(smtp_server_factory, "smtputf8")
    data = "From: Jörg <app@example.com>\r\nSubject: Grüße\r\n\r\nhi\r\n".encode()
    client = create_app(make_settings(**server.settings())).test_client()
    response = client.post("/v1/messages/raw", json={"mail_from": "app@example.com", "rcpt_to": ["friend@example.com"],
                                                      "data": base64.b64encode(data).decode()})
    assert response.status_code == 202
    [(_, options, _, received)] = server.handler.transactions
    assert "SMTPUTF8" in options and "BODY=8BITMIME" in options and received.endswith(data)


def test_the_http_api_takes_a_utf8_address_as_the_library_does(smtp_server_factory, make_settings) -> None:
    """One set of checks for every way in: a non-ASCII local part (RFC 6531) is accepted, and delivered where the
    upstream offers SMTPUTF8, with the header field in UTF-8 (RFC 6532)."""
    server = upstream(smtp_server_factory, "smtputf8")
    client = create_app(make_settings(**server.settings())).test_client()
    response = client.post("/v1/messages", json={"from": "app@example.com", "to": [f"Jörg <{NON_ASCII_LOCAL}>"],
                                                 "subject": "Hi", "text": TEXT})
    assert response.status_code == 202, response.get_json()
    [(_, options, rcpt_tos, received)] = server.handler.transactions
    assert "SMTPUTF8" in options and rcpt_tos == [NON_ASCII_LOCAL]
    assert f"To: =?utf-8?b?SsO2cmc=?= <{NON_ASCII_LOCAL}>\r\n".encode() in received
