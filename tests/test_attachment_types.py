"""An attachment's Content-Type with parameters (``text/csv; charset=utf-8``, as Flask-Mail code gives it) and
the charset of a text attachment, through every way in: the HTTP API, Flask-Mail's ``attach()``, and
flask-mailman's ``attach()`` and attached ``MIMEText``. Before, a type with parameters was refused with a regular
expression for its fix, and text attached as ``str`` went out without a charset, to be read as US-ASCII."""

from __future__ import annotations

import base64
import email.policy
from email.mime.text import MIMEText

import flask_mailman
import pytest
from api_helpers import assert_problem, fields, outbox, parsed
from flask import Flask

from mail_gateway import Mail, Message, create_app
from mail_gateway.errors import InvalidMessageError


def sent_attachment(**attach) -> email.message.EmailMessage:
    app = Flask(__name__)
    app.config.update(TESTING=True, MAIL_DEFAULT_SENDER="support@example.com")
    mail = Mail(app)
    with app.app_context(), mail.record_messages() as sent:
        message = Message("Report", recipients=["to@example.com"], body="attached")
        message.attach(**attach)
        mail.send(message)
    return next(email.message_from_bytes(sent[0].as_bytes(), policy=email.policy.default).iter_attachments())


def test_a_flask_mail_type_with_a_charset_is_sent_as_given() -> None:
    part = sent_attachment(filename="r.csv", content_type="text/csv; charset=utf-8", data="name,city\nZoë,Köln\n")
    assert (part.get_content_type(), part.get_content_charset()) == ("text/csv", "utf-8")
    assert part.get_content() == "name,city\nZoë,Köln\n"


def test_text_attached_as_a_string_says_the_charset_it_was_written_in() -> None:
    part = sent_attachment(filename="notes.txt", data="café")  # the type guessed from the name
    assert (part.get_content_type(), part.get_content_charset()) == ("text/plain", "utf-8")
    part = sent_attachment(filename="notes.txt", content_type="text/plain; charset=iso-8859-1", data="café")
    assert part.get_payload(decode=True) == "café".encode("iso-8859-1") and part.get_content() == "café"


@pytest.mark.parametrize("data", [bytearray(b"\x00\x01binary"), memoryview(b"\x00\x01binary")])
def test_a_buffer_of_bytes_is_attached_as_its_bytes(data) -> None:
    part = sent_attachment(filename="blob.bin", content_type="application/octet-stream", data=data)
    assert part.get_payload(decode=True) == b"\x00\x01binary"


@pytest.mark.parametrize(("attach", "said"), [
    ({"data": 12345}, "attachments[0].data must be bytes or text, not int"),
    ({"content_type": "text/plain; charset=iso-8859-1", "data": "€"}, "cannot be written in iso-8859-1"),
    ({"content_type": "text/plain; charset=no-such-charset", "data": "x"}, "'no-such-charset' is not one"),
    ({"content_type": "text csv", "data": "x"}, "give type/subtype, with parameters after it if any"),
])
def test_an_attachment_that_cannot_be_sent_says_which_and_why(attach, said) -> None:
    with pytest.raises(InvalidMessageError) as caught:
        sent_attachment(filename="r.txt", **attach)
    assert said in str(caught.value) and caught.value.errors[0].field.startswith("attachments[0]")


def test_flask_mailmans_text_attachments_keep_their_charset() -> None:
    app = Flask(__name__)
    app.config.update(TESTING=True, MAIL_DEFAULT_SENDER="support@example.com")
    mail = Mail(app)
    with app.app_context():
        message = flask_mailman.EmailMessage("Report", "attached", to=["to@example.com"])
        message.attach("notes.txt", "café", "text/plain")
        message.attach(MIMEText("Grüße", "plain", "iso-8859-1"))
        mail.send(message)
    sent = email.message_from_bytes(mail.outbox[0].data, policy=email.policy.default)
    parts = list(sent.iter_attachments())
    assert [(p.get_content_type(), p.get_content_charset(), p.get_content()) for p in parts] == [
        ("text/plain", "utf-8", "café"), ("text/plain", "iso-8859-1", "Grüße")]


def api_send(client, content_type: str):
    return client.post("/v1/messages", json={
        "from": "app@example.com", "to": "ann@example.com", "subject": "Report", "text": "attached",
        "attachments": [{"filename": "r.csv", "content": base64.b64encode(b"a;b\n").decode(),
                         "content_type": content_type}]})


def test_the_http_api_takes_a_type_with_parameters_and_writes_them_quoted(make_settings) -> None:
    app = create_app(make_settings(mail_backend="memory"))
    response = api_send(app.test_client(), 'TEXT/CSV; Charset="utf-8"; header=present; name="a;b.csv"')
    assert response.status_code == 202, response.get_data(as_text=True)
    assert b'Content-Type: text/csv; charset=utf-8; header=present; name="a;b.csv"\r\n' in outbox(app)[0].data
    assert next(parsed(outbox(app)[0]).iter_attachments()).get_content() == "a;b\n"


@pytest.mark.parametrize("content_type", [
    "text/csv; charset=utf-8\r\nBcc: victim@example.com", "text/csv; charset", "text/csv; charset=utf-8; charset=x",
    'text/csv; name="Zoë.csv"', "text/csv; a=\"unterminated", "text", "text/csv garbage"])
def test_the_http_api_refuses_a_type_it_cannot_write_naming_the_field(make_settings, content_type) -> None:
    app = create_app(make_settings(mail_backend="memory"))
    problem = assert_problem(api_send(app.test_client(), content_type), 422)
    assert fields(problem) == ["attachments[0].content_type"] and outbox(app) == []
