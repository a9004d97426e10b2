"""What a real SMTP server receives, held to the RFCs the gateway promises: RFC 2047 encoded-words, RFC 2231
parameters, RFC 2387 multipart/related, and Python's parser (``policy.default``) finding no defect in any part."""

from __future__ import annotations

import base64
import email
import email.policy
import re
from email.message import EmailMessage as ParsedMessage
from email.utils import formatdate, make_msgid

import pytest
from api_helpers import HELLO
from flask import Flask, current_app
from flask_mailman import EmailMessage, EmailMultiAlternatives
from smtp_server import HOST

from mail_gateway import MailGateway, create_app
from mail_gateway.errors import InvalidMessageError
from mail_gateway.extension.flask_mail import Message

_ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=")


@pytest.fixture
def send(make_settings, smtp_server):
    """POST /v1/messages with ``HELLO`` and the given fields to a real SMTP server; the bytes it received."""
    client = create_app(make_settings(**smtp_server.settings())).test_client()

    def post(**fields) -> bytes:
        response = client.post("/v1/messages", json={**HELLO, **fields})
        assert response.status_code == 202, response.get_json()
        return smtp_server.messages[-1].data

    return post


def no_defects(data: bytes) -> ParsedMessage:
    """``data`` parsed as Python reads mail, with no defect in any part or header field."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    for part in message.walk():
        assert not part.defects, (part.get_content_type(), part.defects)
        for name, value in part.items():
            assert not value.defects, (name, value.defects)
    return message  # type: ignore[return-value]


@pytest.mark.parametrize("subject", ["Grüße aus Köln " * 12, "東京の天気は晴れです" * 12, "🎉 party " * 30,
                                     "x" * 40 + " é " + "y" * 1200])
def test_encoded_words_are_at_most_75_characters(send, subject) -> None:
    # RFC 2047 2: "An 'encoded-word' may not be more than 75 characters long". Before: the standard library's
    # folding, at 78 characters a line, made words of 76 (a continuation's space and 16 base64 quads around them).
    data = send(subject=subject, headers={"X-Note": subject})
    words = _ENCODED_WORD.findall(data)
    assert words and max(map(len, words)) <= 75, max(words, key=len)
    message = no_defects(data)
    assert message["Subject"] == subject and message["X-Note"] == subject


@pytest.mark.parametrize("filename", ["Grüße résumé " * 4 + ".pdf", "東京の報告書" * 8 + ".pdf", "🎉" * 40 + ".txt"])
def test_a_long_non_ascii_file_name_is_split_between_characters(send, filename) -> None:
    # RFC 2231 continuations: Python's parser decodes each segment on its own. Before: a segment could end inside a
    # character's UTF-8 octets (...r%C3; filename*1*=%A9sum...), an UndecodableBytesDefect in Content-Disposition.
    data = send(attachments=[{"filename": filename, "content": "AAAA"}])
    [attachment] = no_defects(data).iter_attachments()
    assert attachment.get_filename() == filename
    assert re.search(rb"filename\*1\*=", data)
    for segment in re.findall(rb"filename\*\d+\*=(?:utf-8'')?([^;\r\n]*)", data):
        assert re.sub(rb"%([0-9A-F]{2})", lambda m: bytes.fromhex(m[1].decode()), segment).decode("utf-8")


@pytest.mark.parametrize("bodies", [{"html": '<img src="cid:logo">'}, {"text": "Logo", "html": '<img src="cid:logo">'}])
def test_multipart_related_names_the_type_of_its_root(send, bodies) -> None:
    # RFC 2387 3.1: "The type parameter must be specified and its value is the MIME media type of the 'root' body
    # part". Before: multipart/related had a boundary and nothing else.
    image = {"filename": "logo.png", "content": "AAAA", "content_type": "image/png", "content_id": "logo"}
    file = {"filename": "a.pdf", "content": "AAAA"}
    message = no_defects(send(**{"text": None, **bodies}, attachments=[image, file]))
    related = message.get_payload()[0]
    root = related.get_payload()[0]
    assert related.get_content_type() == "multipart/related"
    assert related.get_param("type") == root.get_content_type()
    assert root.get_content_type() == ("multipart/alternative" if "text" in bodies else "text/html")


def library_app(smtp_server):
    app = Flask(__name__)
    app.config.update(MAIL_DEFAULT_SENDER="app@example.com", MAIL_SERVER=HOST, MAIL_PORT=smtp_server.port)
    MailGateway(app)
    return app


@pytest.mark.parametrize("header", [{"Message-ID": "garbage"}, {"Message-ID": " "}, {"Message-ID": "<ü@example.com>"},
                                    {"Date": "yesterday"}, {"Date": ""}, {"Date": "2024-01-31"},
                                    # a year of fourteen digits: the standard library's OverflowError escaped
                                    {"Date": "Mon, 07 Dec 99999999999999 05:06:44 +0000"}])
def test_a_message_id_or_date_among_a_library_messages_headers_is_checked(smtp_server, header) -> None:
    # Written as given, so held to what the gateway's own are. Before: flask-mailman's headers and Flask-Mail's
    # extra_headers put "Message-ID: garbage", an empty Date or an encoded-word Message-ID on the wire.
    [(name, value)] = header.items()
    with library_app(smtp_server).app_context():
        with pytest.raises(InvalidMessageError) as raised:
            EmailMessage("Hi", "Body", to=["a@example.com"], headers=header).send()
        assert raised.value.field == f"headers.{name}" and repr(value.strip()) in str(raised.value)
        with pytest.raises(InvalidMessageError):
            current_app.extensions["mail"].send(Message("Hi", recipients=["a@example.com"], body="B",
                                                        extra_headers=header))
    assert smtp_server.messages == []


def test_a_well_formed_message_id_and_date_of_a_library_message_are_sent_once(smtp_server) -> None:
    header = {"Message-ID": make_msgid(domain="example.com"), "Date": formatdate(0, localtime=True)}
    with library_app(smtp_server).app_context():
        assert EmailMessage("Hi", "Body", to=["a@example.com"], headers=header).send() == 1
    message = no_defects(smtp_server.messages[0].data)
    assert message.get_all("Message-ID") == [header["Message-ID"]] and message.get_all("Date") == [header["Date"]]


@pytest.mark.parametrize("filename", ['Q3 "final" report.pdf', "Grüße résumé " * 4 + ".pdf", "é.png"])
def test_an_attachment_is_named_on_content_type_too(send, filename) -> None:
    # RFC 2183's filename is the standard; the older name parameter of Content-Type is what some clients still
    # read (Outlook for inline images among them), so Thunderbird and Apple Mail write both. Before: only filename.
    image = {"filename": filename, "content": "AAAA", "content_type": "image/png", "content_id": "logo"}
    data = send(html='<img src="cid:logo">', attachments=[image, {"filename": filename, "content": "AAAA"}])
    parts = [part for part in no_defects(data).walk() if part.get_filename()]
    assert len(parts) == 2
    for part in parts:
        assert part.get_filename() == filename and part.get_param("name") == filename
        assert part["Content-Type"].params["name"] == filename
    assert b"=?" not in data.partition(b"\r\n\r\n")[2]  # no encoded-word in a quoted string (RFC 2047 5)


@pytest.mark.parametrize(("header", "fix"), [("Content-Disposition", "disposition"), ("content-id", "content_id"),
                                             ("DKIM-Signature", "GATEWAY_DKIM_KEYS")])
def test_a_header_the_gateway_writes_is_refused_naming_the_field(make_settings, smtp_server, header, fix) -> None:
    # Before: "Content-Disposition: attachment" at the top made the whole message one file in mail clients, and a
    # DKIM-Signature made before the gateway wrote the bytes (its Message-ID, Date, boundaries) can never verify.
    client = create_app(make_settings(**smtp_server.settings())).test_client()
    response = client.post("/v1/messages", json={**HELLO, "headers": {header: "attachment"}})
    assert response.status_code == 422, response.get_json()
    [error] = response.get_json()["errors"]
    assert error["field"] == f"headers.{header}" and fix in error["message"]
    with library_app(smtp_server).app_context():
        with pytest.raises(InvalidMessageError, match=fix):
            EmailMessage("Hi", "Body", to=["a@example.com"], headers={header: "attachment"}).send()
    assert smtp_server.messages == []


@pytest.mark.parametrize(("content", "charset"), [("Grüße aus Köln\n".encode(), "utf-8"), (b"plain ASCII\n", None),
                                                  ("Grüße\n".encode("latin-1"), None)])
def test_a_text_file_of_utf8_bytes_says_its_charset(send, content, charset) -> None:
    # RFC 2046 4.1.2: a text part without a charset is read as US-ASCII, so UTF-8 bytes showed as mojibake
    # ("GrÃ¼ÃŸe"). Before: notes.txt went as text/plain alone. flask-mailman labels such a file utf-8 too; bytes in
    # another charset cannot be told apart, and stay unlabelled.
    data = send(attachments=[{"filename": "notes.txt", "content": base64.b64encode(content).decode()}])
    [attachment] = no_defects(data).iter_attachments()
    assert attachment.get_content_type() == "text/plain" and attachment.get_content_charset() == charset
    assert attachment.get_payload(decode=True) == content
    if charset:
        assert attachment.get_content() == content.decode(charset)


INVITATION = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"


def test_a_calendar_invitation_carries_its_method_over_http(send) -> None:
    # RFC 6047 2.4: an iMIP text/calendar part MUST name its method, or clients show no invitation. Before: an
    # alternative's content_type could not carry a parameter (a 422 quoting a regular expression).
    data = send(alternatives=[{"content": INVITATION, "content_type": "text/calendar; method=REQUEST; charset=utf-8"}])
    calendar = no_defects(data).get_payload()[1]
    assert calendar.get_content_type() == "text/calendar"
    assert calendar.get_param("method") == "REQUEST" and calendar.get_content_charset() == "utf-8"
    assert calendar["Content-Type"].params == {"method": "REQUEST", "charset": "utf-8"}  # the charset written once
    assert calendar.get_content() == INVITATION


def test_a_flask_mailman_invitation_is_sent_as_flask_mailman_writes_it(smtp_server) -> None:
    # Before: attach_alternative(ics, "text/calendar; method=REQUEST"), which flask-mailman sends, was refused.
    with library_app(smtp_server).app_context():
        message = EmailMultiAlternatives("Meeting", "Body", to=["a@example.com"])
        message.attach_alternative(INVITATION, "text/calendar; method=REQUEST")
        assert message.send() == 1
    calendar = no_defects(smtp_server.messages[0].data).get_payload()[1]
    assert (calendar.get_content_type(), calendar.get_param("method")) == ("text/calendar", "REQUEST")


@pytest.mark.parametrize("content_type", ["text/plain; format=flowed", "text/html; charset=utf-8", "image/png",
                                          "text/calendar; method"])
def test_an_alternative_type_that_cannot_be_sent_is_a_422_saying_why(make_settings, content_type) -> None:
    client = create_app(make_settings(mail_backend="memory")).test_client()
    response = client.post("/v1/messages", json={**HELLO, "alternatives": [{"content": "x",
                                                                             "content_type": content_type}]})
    assert response.status_code == 422
    [error] = response.get_json()["errors"]
    assert error["field"] == "alternatives[0].content_type" and "pattern" not in error["message"], error


@pytest.mark.parametrize("name", ["é" * 300, "Jörg Müller " * 50])
def test_a_long_name_of_an_international_address_is_folded(smtp_server_factory, make_settings, name) -> None:
    # RFC 5322 2.1.1: at most 998 octets a line. An address whose local part is not ASCII is written as UTF-8
    # (RFC 6532), one a line; before, its name's encoded-words were joined by spaces on that line (1,041 octets).
    server = smtp_server_factory(enable_SMTPUTF8=True)
    client = create_app(make_settings(**server.settings())).test_client()
    response = client.post("/v1/messages", json={**HELLO, "to": [f'"{name}" <jörg@example.com>', "b@example.com"]})
    assert response.status_code == 202, response.get_json()
    data = server.messages[0].data
    assert max(map(len, data.split(b"\r\n"))) <= 998
    words = _ENCODED_WORD.findall(data)
    assert max(map(len, words)) <= 75
    to = email.message_from_string(data.decode(), policy=email.policy.SMTPUTF8)["To"]  # RFC 6532: UTF-8
    assert [a.addr_spec for a in to.addresses] == ["jörg@example.com", "b@example.com"]


def test_an_international_address_shows_its_domain_as_written(smtp_server_factory, make_settings) -> None:
    # An address whose local part is not ASCII needs SMTPUTF8, and its field is UTF-8 (RFC 6532): its domain is shown
    # in U-labels, as written. Before: jörg@xn--bcher-kva.example. An ASCII address keeps its A-labels, so a message
    # that needs no SMTPUTF8 does not come to need it.
    server = smtp_server_factory(enable_SMTPUTF8=True)
    client = create_app(make_settings(**server.settings())).test_client()
    to = ["Jörg <jörg@bücher.example>", "ärger@bücher.example", "ann@bücher.example"]
    response = client.post("/v1/messages", json={**HELLO, "to": to})
    assert response.status_code == 202, response.get_json()
    [received] = server.messages
    head = received.data.partition(b"\r\n\r\n")[0].decode()
    assert "<jörg@bücher.example>" in head and "ärger@bücher.example," in head and "ann@xn--bcher-kva.example" in head
    assert "bücher" not in received.rcpt_tos[2]


@pytest.mark.parametrize("charset", ["utf-16", "utf-16-le", "utf-32"])
def test_a_body_in_a_charset_whose_line_breaks_are_not_cr_lf_arrives_readable(smtp_server, charset) -> None:
    # UTF-16 and UTF-32 write a line break as other octets than CR LF, so only base64 carries such text whole, as
    # Flask-Mail and flask-mailman send it. Before: it went quoted-printable, which read the 0x0A of each break as
    # a line end and turned it into CR LF, and the text arrived as 'héllo\u0a0d眀...'.
    body = "héllo\nwörld 日本\n"
    with library_app(smtp_server).app_context():
        current_app.extensions["mail"].send(Message("Hi", recipients=["a@example.com"], body=body, charset=charset))
    message = no_defects(smtp_server.messages[0].data)
    assert message["Content-Transfer-Encoding"] == "base64" and message.get_content_charset() == charset
    assert message.get_content().replace("\r\n", "\n") == body
