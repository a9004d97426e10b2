"""Where the gateway, used as Flask-Mail or flask-mailman, behaved otherwise than the real libraries (Flask-Mail
0.10.0, flask-mailman 1.1.1) for code written against them: each test says what it gave before."""

from __future__ import annotations

import email
import email.policy
import smtplib

import flask_mail
import pytest
from flask import Flask
from flask_mailman import EmailMessage, EmailMultiAlternatives
from smtp_server import HOST, free_port

from mail_gateway import Mail, MailGateway, Message
from mail_gateway.errors import ConfigurationError, ConnectionSetupError, InvalidMessageError


def app_with(**config) -> tuple[Flask, Mail]:
    app = Flask(__name__)
    app.config.update({"MAIL_DEFAULT_SENDER": "support@example.com", **config})
    return app, Mail(app)


def hello() -> Message:
    return Message("Hi", recipients=["to@example.com"], body="x")


def test_suppress_set_at_run_time_keeps_mail_from_the_server_and_records_it(smtp_server, tmp_path) -> None:
    # Before: AttributeError "suppress is fixed once MailGateway(app) has started", the conftest idiom of
    # Flask-Mail's users.
    (tmp_path / "note.subject").write_text("Note", encoding="utf-8")
    (tmp_path / "note.txt").write_text("A note", encoding="utf-8")
    app, mail = app_with(MAIL_SERVER=HOST, MAIL_PORT=smtp_server.port, GATEWAY_TEMPLATES_DIR=str(tmp_path))
    assert mail.suppress is False
    app.extensions["mail"].suppress = True
    with app.app_context(), mail.record_messages() as outbox:
        mail.send(hello())
        mail.send_template("note", recipients=["to@example.com"])
        # Kept in memory, as flask-mailman's locmem keeps it.
        assert mail.suppress is True and [m.subject for m in mail.outbox] == ["Hi", "Note"]
        with mail.get_connection("smtp") as conn:  # a backend named in the call is still that backend
            conn.send_messages([EmailMessage("Named", "x", to=["to@example.com"])])
        mail.state.suppress = False
        mail.send(hello())
    assert len(outbox) == 3 and mail.suppress is False
    assert [email.message_from_bytes(m.data)["Subject"] for m in smtp_server.messages] == ["Named", "Hi"]
    MailGateway.state(app).sender.close()


def test_suppress_false_at_run_time_sends_from_a_testing_app(smtp_server) -> None:
    app, mail = app_with(TESTING=True, MAIL_SERVER=HOST, MAIL_PORT=smtp_server.port)
    assert mail.suppress is True
    mail.state.suppress = False  # as Flask-Mail's: TESTING no longer keeps it from the server
    with app.app_context():
        mail.send(hello())
        mail.state.suppress = True
        mail.send(hello())
        assert len(smtp_server.messages) == 1 and len(mail.outbox) == 1
    MailGateway.state(app).close()


def test_suppress_keeps_mail_off_the_console_and_in_the_outbox(capsys) -> None:
    app, mail = app_with(MAIL_BACKEND="console", MAIL_CONSOLE_KEEP=True)  # the console keeps what it prints
    mail.state.suppress = True
    with app.app_context():
        mail.send(hello())
        assert [m.subject for m in mail.outbox] == ["Hi"]  # what was suppressed, not the console's (none)
    assert "Subject: Hi" not in capsys.readouterr().out


def test_debug_may_be_set_off_and_use_localtime_stays_fixed() -> None:
    # Before: AttributeError saying to set MAIL_DEBUG in app.config, where any true value is refused.
    app, mail = app_with(TESTING=True)
    mail.state.debug = 0
    assert mail.debug == 0
    with pytest.raises(ConfigurationError, match="does not print the SMTP conversation") as caught:
        mail.state.debug = 1
    assert caught.value.variable == "MAIL_DEBUG"
    with pytest.raises(AttributeError, match="local time"):
        mail.state.use_localtime = False


def test_as_string_renders_a_message_without_recipients_and_sending_one_still_needs_them() -> None:
    # Before: IncompleteMessageError "the message has no recipients" from as_string() and as_bytes().
    app, mail = app_with(TESTING=True)
    with app.app_context():
        preview = Message("Preview", body="Hello")
        text = preview.as_string()
        headers = email.message_from_string(text)
        assert (headers["Subject"], headers["From"], headers["To"]) == ("Preview", "support@example.com", None)
        assert preview.as_bytes().endswith(b"\r\n\r\nHello")
        with pytest.raises(AssertionError, match="no recipients"):  # what Flask-Mail asserted
            mail.send(preview)
        assert len(mail.outbox) == 0


def test_a_default_sender_pair_reads_back_as_flask_mails_and_is_written_quoted() -> None:
    # Before: mail.default_sender and Message("x").sender were both '"J. Doe" <jd@example.com>'.
    app, mail = app_with(TESTING=True, MAIL_DEFAULT_SENDER=("J. Doe", "jd@example.com"))
    with app.app_context():
        assert mail.default_sender == ("J. Doe", "jd@example.com")
        assert Message("x").sender == "J. Doe <jd@example.com>"
        assert flask_mail.Message("x").sender == "J. Doe <jd@example.com>"  # Flask-Mail's own class reads the pair
        assert EmailMessage("x").from_email == '"J. Doe" <jd@example.com>'  # as flask-mailman's formataddr gives
        named = Message("Named", recipients=["to@example.com"], body="x", sender=("Doe, John", "jd@example.com"))
        assert named.sender == "Doe, John <jd@example.com>"
        for message in (hello(), flask_mail.Message("Hi", recipients=["to@example.com"], body="x"), named):
            mail.send(message)
        froms = [email.message_from_bytes(sent.data, policy=email.policy.default)["From"] for sent in mail.outbox]
    assert [(f.addresses[0].display_name, f.addresses[0].addr_spec) for f in froms] == [
        ("J. Doe", "jd@example.com"), ("J. Doe", "jd@example.com"), ("Doe, John", "jd@example.com")]
    assert [str(f) for f in froms] == ['"J. Doe" <jd@example.com>'] * 2 + ['"Doe, John" <jd@example.com>']
    with pytest.raises(InvalidMessageError, match="give an address as a string") as caught:
        Message("Hi", recipients=["to@example.com"], sender=("a", "b", "c"))  # type: ignore[arg-type]
    assert caught.value.field == "sender"


def test_a_refused_connection_is_also_connection_refused_error() -> None:
    # Before: SMTPConnectionFailedError, a ConnectionError but not the ConnectionRefusedError Flask-Mail and
    # flask-mailman let through, so `except ConnectionRefusedError` missed a server that was down.
    app, mail = app_with(MAIL_SERVER=HOST, MAIL_PORT=free_port(), MAIL_RETRY_ATTEMPTS=1)
    with app.app_context():
        with pytest.raises(ConnectionRefusedError) as sending:
            mail.send(hello())
        with pytest.raises(ConnectionRefusedError) as opening, mail.connect():
            pass
    for caught in (sending.value, opening.value):
        assert isinstance(caught, smtplib.SMTPConnectError) and isinstance(caught, ConnectionSetupError)
        assert "could not connect" in str(caught)  # the gateway's line, naming the upstream
    MailGateway.state(app).sender.close()


def test_outbox_bodies_have_the_callers_line_breaks() -> None:
    # Before: 'Hello,\r\nline 2', the line breaks of the bytes sent, where flask-mailman's outbox kept the object.
    app, mail = app_with(TESTING=True)
    with app.app_context(), mail.record_messages() as recorded:
        message = EmailMultiAlternatives("Hi", "Hello,\nline 2", to=["to@example.com"])
        message.attach_alternative("<p>one</p>\n<p>two</p>", "text/html")
        message.send()
        mail.send(Message("Hi", recipients=["to@example.com"], body="a\nb", html="<p>a</p>\n"))
        sent, flask_mail_sent = mail.outbox
    assert sent.body == "Hello,\nline 2"
    assert sent.alternatives == [("<p>one</p>\n<p>two</p>", "text/html")]
    assert (flask_mail_sent.body, flask_mail_sent.alternatives) == ("a\nb", [("<p>a</p>\n", "text/html")])
    assert [m.body for m in recorded] == ["Hello,\nline 2", "a\nb"]  # record_messages: the objects themselves


def test_outbox_extra_headers_are_the_callers_alone() -> None:
    # Before: {'Date': ..., 'Message-ID': ..., 'X-Tag': 't'}: the Date and Message-ID every message gets. Every
    # message has both, so they are never listed there, even where the caller set them: read them as message_id
    # and message()["Date"].
    app, mail = app_with(TESTING=True)
    own = {"Message-ID": "<own.sent@example.com>", "Date": "Mon, 07 Dec 2026 14:00:00 +0000", "X-Tag": "t"}
    with app.app_context():
        EmailMessage("Hi", "x", to=["to@example.com"], headers={"X-Tag": "t"}).send()
        EmailMessage("Own", "x", to=["to@example.com"], headers=own).send()
        mail.send(Message("Hi", recipients=["to@example.com"], body="x", extra_headers={"X-Tag": "t"}))
        mail.outbox.append(EmailMessage("Kept", "x", to=["to@example.com"], headers={"X-Tag": "t"}))
        assert [m.extra_headers for m in mail.outbox] == [{"X-Tag": "t"}] * 4
        assert mail.outbox[1].message_id == "<own.sent@example.com>"
        assert mail.outbox[1].message()["Date"] == own["Date"]
        assert all(m.message_id and m.message()["Date"] for m in mail.outbox)  # still sent, and readable there

