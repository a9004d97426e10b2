"""What the library API raises is catchable the old way (smtplib's exceptions, BadHeaderError) and is still the
gateway's own class, against real SMTP servers that refuse, fail logins and hang up."""

from __future__ import annotations

import smtplib

import flask_mailman
import pytest
from aiosmtpd.smtp import AuthResult
from flask import Flask
from flask_mailman import EmailMessage
from smtp_server import HOST, FaultHandler, free_port

from mail_gateway import MailGateway
from mail_gateway.errors import (
    ConnectionSetupError,
    DeliveryError,
    DeliveryOutcomeUnknownError,
    InvalidMessageError,
    MessageTooLargeError,
    PermanentDeliveryError,
    RecipientsRefusedError,
    TransientDeliveryError,
)
from mail_gateway.http.problems import problem_for


def send_through(port: int, message_factory=None, **config) -> BaseException:
    app = Flask(__name__)
    app.config.update(MAIL_SERVER=HOST, MAIL_PORT=port, MAIL_RETRY_ATTEMPTS=1, **config)
    MailGateway(app)
    try:
        with app.app_context(), pytest.raises(smtplib.SMTPException) as caught:
            if message_factory is None:
                EmailMessage("Hi", "x", "app@example.com", ["a@example.com", "b@example.com"]).send()
            else:
                MailGateway().send(message_factory())
    finally:
        MailGateway.state(app).sender.close()
    return caught.value


def test_every_recipient_refused_is_smtp_recipients_refused(smtp_server_factory) -> None:
    server = smtp_server_factory(FaultHandler(default_rcpt_reply="550 5.1.1 no such user"))
    caught = send_through(server.port)
    assert isinstance(caught, smtplib.SMTPRecipientsRefused) and isinstance(caught, RecipientsRefusedError)
    # smtplib's {address: (code, reply)} and the gateway's per-recipient results, from one attribute.
    assert dict(caught.recipients.items()) == {"a@example.com": (550, b"5.1.1 no such user"),
                                               "b@example.com": (550, b"5.1.1 no such user")}
    assert "a@example.com" in caught.recipients and caught.recipients[0].status == "rejected"
    assert problem_for(caught).status == 422  # the HTTP mapping reads it as the gateway's class still


def test_every_recipient_deferred_is_smtp_recipients_refused_and_transient(smtp_server_factory) -> None:
    server = smtp_server_factory(FaultHandler(default_rcpt_reply="450 4.2.0 try later"))
    caught = send_through(server.port)
    assert isinstance(caught, smtplib.SMTPRecipientsRefused) and isinstance(caught, TransientDeliveryError)
    assert caught.recipients.get("a@example.com") == (450, b"4.2.0 try later")


@pytest.mark.parametrize(("reply", "kind"), [("550 5.7.1 sender rejected", PermanentDeliveryError),
                                             ("451 4.3.0 try later", TransientDeliveryError)])
def test_a_refused_sender_is_smtp_sender_refused(smtp_server_factory, reply, kind) -> None:
    server = smtp_server_factory(FaultHandler(mail_reply=reply))
    caught = send_through(server.port)
    assert isinstance(caught, smtplib.SMTPSenderRefused) and isinstance(caught, kind)
    assert (caught.smtp_code, caught.sender) == (int(reply[:3]), "app@example.com")
    assert caught.smtp_error == reply[4:].encode()  # the server's reply, as smtplib gives it


@pytest.mark.parametrize(("reply", "kind"), [("554 5.6.0 content rejected", PermanentDeliveryError),
                                             ("451 4.3.0 try later", TransientDeliveryError)])
def test_a_refused_message_is_smtp_data_error(smtp_server_factory, reply, kind) -> None:
    # Before: a plain smtplib.SMTPException, which `except smtplib.SMTPDataError` (what smtplib raises for a
    # refusal after DATA, under Flask-Mail and flask-mailman) and `except smtplib.SMTPResponseException` missed.
    server = smtp_server_factory(FaultHandler(data_reply=reply))
    caught = send_through(server.port)
    assert isinstance(caught, smtplib.SMTPDataError) and isinstance(caught, kind)
    # Before, smtp_error was the gateway's line ('127.0.0.1:port: refused the message: 554 ...'), naming the
    # upstream, where smtplib's is the server's reply alone.
    assert (caught.smtp_code, caught.smtp_error) == (int(reply[:3]), reply[4:].encode())


def test_a_refused_login_is_smtp_authentication_error(smtp_server_factory) -> None:
    def refuse(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=False, handled=False)

    server = smtp_server_factory(FaultHandler(), authenticator=refuse, auth_require_tls=False)
    caught = send_through(server.port, MAIL_USERNAME="app", MAIL_PASSWORD="wrong-pw")
    assert isinstance(caught, smtplib.SMTPAuthenticationError) and isinstance(caught, PermanentDeliveryError)
    assert caught.smtp_code == 535 and "wrong-pw" not in str(caught)


@pytest.mark.parametrize("config", [{"MAIL_USERNAME": "app", "MAIL_PASSWORD": "a-password"}, {"MAIL_USE_TLS": True}])
def test_a_server_without_auth_or_starttls_is_smtp_not_supported_error(smtp_server_factory, config) -> None:
    # Before: a plain smtplib.SMTPException, where smtplib raises SMTPNotSupportedError under Flask-Mail and
    # flask-mailman when the server offers no AUTH for MAIL_USERNAME, or no STARTTLS for MAIL_USE_TLS.
    server = smtp_server_factory(FaultHandler())
    caught = send_through(server.port, **config)
    assert isinstance(caught, smtplib.SMTPNotSupportedError) and isinstance(caught, PermanentDeliveryError)
    assert "a-password" not in str(caught)


def test_a_lost_connection_after_the_message_is_smtp_server_disconnected(smtp_server_factory) -> None:
    server = smtp_server_factory(FaultHandler(disconnect_after_data=True))
    caught = send_through(server.port)
    assert isinstance(caught, smtplib.SMTPServerDisconnected) and isinstance(caught, DeliveryOutcomeUnknownError)


def test_a_lost_connection_before_the_message_is_smtp_server_disconnected(smtp_server_factory) -> None:
    server = smtp_server_factory(FaultHandler(disconnect_at_rcpt=True))
    caught = send_through(server.port)
    assert isinstance(caught, smtplib.SMTPServerDisconnected) and isinstance(caught, TransientDeliveryError)


def test_an_unreachable_server_is_an_smtp_connect_error() -> None:
    caught = send_through(free_port())
    assert isinstance(caught, smtplib.SMTPConnectError) and isinstance(caught, ConnectionSetupError)
    assert isinstance(caught, OSError)  # what `except OSError` around smtplib caught before


def test_a_refused_message_is_an_smtp_exception_through_the_flask_mail_api(smtp_server_factory) -> None:
    from mail_gateway import Message

    server = smtp_server_factory(FaultHandler(data_reply="554 5.6.0 content rejected"))

    def flask_mail_message() -> Message:
        return Message("Hi", recipients=["a@example.com"], body="x", sender="app@example.com")

    caught = send_through(server.port, flask_mail_message)
    assert isinstance(caught, PermanentDeliveryError) and caught.smtp_code == 554
    assert isinstance(caught.__cause__, DeliveryError) and not isinstance(caught.__cause__, smtplib.SMTPException)


def test_failures_of_other_backends_stay_the_gateways_own() -> None:
    app = Flask(__name__)
    app.config.update(TESTING=True, MAIL_MEMORY_MAX_BYTES=1024)
    MailGateway(app)
    with app.app_context(), pytest.raises(MessageTooLargeError) as caught:
        EmailMessage("Big", "x" * 4096, "app@example.com", ["a@example.com"]).send()
    assert not isinstance(caught.value, smtplib.SMTPException)


def test_a_header_injection_is_bad_header_error(make_settings) -> None:
    # Before: flask-mailman's BadHeaderError became an InvalidMessageError that `except BadHeaderError` missed.
    from mail_gateway import BadHeaderError

    app = Flask(__name__)
    MailGateway(app, settings=make_settings(mail_backend="memory"))
    with app.app_context():
        for message in (EmailMessage("Hi\nBcc: victim@example.com", "x", "app@example.com", ["a@example.com"]),
                        EmailMessage("Hi", "x", "app@example.com", ["a@example.com\r\nBcc: victim@example.com"])):
            with pytest.raises(flask_mailman.BadHeaderError) as caught:
                message.send()
            assert isinstance(caught.value, BadHeaderError) and isinstance(caught.value, InvalidMessageError)
    assert MailGateway.state(app).backend.messages == []
