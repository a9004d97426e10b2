"""One renderer: the same message sent as a library object (Flask-Mail's and flask-mailman's), through
``POST /v1/messages``, through ``mail-gateway send`` and through the SMTP ingress reaches the upstream as the same
bytes, apart from its Message-ID, its Date and its random MIME boundaries; and each way refuses the same bad
message for the same reason."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask_mailman import EmailMultiAlternatives
from ingress_support import wait_until

from mail_gateway import MailGateway, Message
from mail_gateway.app import create_app
from mail_gateway.backends.registry import create_backend
from mail_gateway.cli import main
from mail_gateway.errors import InvalidMessageError

SENDER = "Ann Example <ann@example.com>"
TO, CC, BCC, REPLY_TO = "Bob Brown <bob@example.com>", "carol@example.com", "dave@example.com", "desk@example.com"
SUBJECT = "Grüße: the report ✓"
TEXT = "Hello Bob,\nthe report is attached.\n"
HTML = "<p>Hello Bob,</p><p>the report is <b>attached</b>.</p>"
REPORT = b"%PDF-1.4 not really\x00\xff"
HEADERS = {"X-Campaign": "spring"}
PAYLOAD = {"from": SENDER, "to": [TO], "cc": [CC], "bcc": [BCC], "reply_to": [REPLY_TO], "subject": SUBJECT,
           "text": TEXT, "html": HTML, "headers": HEADERS,
           "attachments": [{"filename": "report.pdf", "content": base64.b64encode(REPORT).decode()}]}
_BOUNDARY = re.compile(rb"={15}[0-9a-f]{32}==")
_STAMPS = re.compile(rb"^(Date|Message-ID): [^\r\n]*\r\n", re.MULTILINE)


def comparable(data: bytes) -> bytes:
    """The bytes without the Date and Message-ID fields, each random boundary named by its order."""
    names: dict[bytes, bytes] = {}
    data = _STAMPS.sub(b"", data)
    return _BOUNDARY.sub(lambda m: names.setdefault(m.group(), b"BOUNDARY-%d" % len(names)), data)


def via_flask_mail(settings: dict) -> None:
    app = Flask(__name__)
    app.config.update({key.upper(): value for key, value in settings.items()})
    mail = MailGateway(app)
    with app.app_context():
        message = Message(SUBJECT, sender=SENDER, recipients=[TO], cc=[CC], bcc=[BCC], reply_to=REPLY_TO,
                          body=TEXT, html=HTML, extra_headers=dict(HEADERS))
        message.attach("report.pdf", "application/pdf", REPORT)
        mail.send(message)


def via_flask_mailman(settings: dict) -> None:
    app = Flask(__name__)
    app.config.update({key.upper(): value for key, value in settings.items()})
    mail = MailGateway(app)
    with app.app_context():
        message = EmailMultiAlternatives(SUBJECT, TEXT, SENDER, [TO], cc=[CC], bcc=[BCC], reply_to=[REPLY_TO],
                                         headers=dict(HEADERS), connection=mail.get_connection())
        message.attach_alternative(HTML, "text/html")
        message.attach("report.pdf", REPORT, "application/pdf")
        assert message.send() == 1


def via_http(make_settings, settings: dict) -> None:
    response = create_app(make_settings(**settings)).test_client().post("/v1/messages", json=PAYLOAD)
    assert response.status_code == 202, response.get_json()


def via_cli(monkeypatch, tmp_path: Path, settings: dict) -> None:
    for key, value in settings.items():
        monkeypatch.setenv(key.upper(), str(value))
    (tmp_path / "body.html").write_text(HTML, encoding="utf-8")
    (tmp_path / "report.pdf").write_bytes(REPORT)
    result = CliRunner().invoke(main, [
        "send", "--from", SENDER, "--to", TO, "--cc", CC, "--bcc", BCC, "--reply-to", REPLY_TO, "--subject", SUBJECT,
        "--text", TEXT, "--html-file", str(tmp_path / "body.html"), "--attach", str(tmp_path / "report.pdf"),
        "--header", "X-Campaign: spring"])
    assert result.exit_code == 0, result.output


def test_the_same_message_four_ways_gives_the_same_bytes(smtp_server, make_settings, ingress_factory, monkeypatch,
                                                        tmp_path) -> None:
    settings = smtp_server.settings()
    via_flask_mail(settings)
    via_flask_mailman(settings)
    via_http(make_settings, settings)
    via_cli(monkeypatch, tmp_path, settings)
    # The ingress carries what its client wrote: the composed bytes, submitted without Message-ID and Date (which
    # the gateway adds) and with the Bcc field an SMTP client may leave in (which the gateway removes).
    written = _STAMPS.sub(b"", smtp_server.messages[2].data).replace(b"MIME-Version", b"Bcc: dave@example.com\r\n"
                                                                     b"MIME-Version", 1)
    ingress = ingress_factory(create_backend(make_settings(**settings)))
    with ingress.client() as client:
        client.sendmail("ann@example.com", ["bob@example.com", CC, BCC], written)
    wait_until(lambda: len(smtp_server.messages) == 5, "the ingress's copy has reached the upstream")
    received = smtp_server.messages
    assert {(m.mail_from, tuple(sorted(m.rcpt_tos))) for m in received} == {
        ("ann@example.com", ("bob@example.com", CC, BCC))}
    expected = comparable(received[2].data)
    assert b"dave@example.com" not in expected and b"X-Campaign: spring" in expected
    for way, message in zip(("Flask-Mail", "flask-mailman", "HTTP", "CLI", "ingress"), received, strict=True):
        assert comparable(message.data) == expected, way


BAD_HEADER = {"X-Campaign": "spring\u2028sale"}


def test_each_way_refuses_a_bad_header_for_the_same_reason(make_settings, monkeypatch) -> None:
    settings = {"mail_backend": "memory"}
    response = create_app(make_settings(**settings)).test_client().post(
        "/v1/messages", json={**PAYLOAD, "headers": BAD_HEADER})
    assert response.status_code == 422
    [problem] = response.get_json()["errors"]
    assert problem["field"] == "headers.X-Campaign" and "U+2028" in problem["message"]
    app = Flask(__name__)
    app.config.update(MAIL_BACKEND="memory")
    mail = MailGateway(app)
    with app.app_context(), pytest.raises(InvalidMessageError) as refused:
        mail.send(Message(SUBJECT, sender=SENDER, recipients=[TO], body=TEXT, extra_headers=BAD_HEADER))
    assert refused.value.field == "headers.X-Campaign" and "U+2028" in str(refused.value)
    for key, value in settings.items():
        monkeypatch.setenv(key.upper(), value)
    result = CliRunner().invoke(main, ["send", "--from", SENDER, "--to", TO, "--text", TEXT,
                                       "--header", "X-Campaign: spring\u2028sale"])
    assert result.exit_code == 2 and "--header" in result.output and "U+2028" in result.output


def test_a_header_field_of_extra_headers_keeps_a_display_name_with_a_comma(make_settings) -> None:
    """A To, Cc or Reply-To among flask-mailman's extra_headers is read with the address parser and written
    back quoted, so a name with a comma stays one address."""
    backend = create_backend(make_settings(mail_backend="memory"))
    message = EmailMultiAlternatives("Hi", TEXT, SENDER, ["john@example.com"],
                                     headers={"To": '"Doe, John" <john@example.com>'})
    backend.send_messages([message])
    [kept] = backend.messages
    assert b'To: "Doe, John" <john@example.com>\r\n' in kept.data
    assert kept.recipients == ("john@example.com",)
