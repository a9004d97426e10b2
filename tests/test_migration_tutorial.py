"""The canonical Flask-Mail tutorial, with only its import line changed, against a real SMTP server that
requires STARTTLS and AUTH and presents a certificate of a CA made for the test."""

from __future__ import annotations

import smtplib
import ssl

import pytest
import trustme
from aiosmtpd.smtp import AuthResult
from flask import Flask
from smtp_server import HOST, RecordingHandler

from mail_gateway import Mail, Message  # the one line that changed: it was `from flask_mail import Mail, Message`
from mail_gateway.errors import PermanentDeliveryError
from mail_gateway.extension import MailGateway


class TlsRecordingHandler(RecordingHandler):
    def __init__(self) -> None:
        super().__init__()
        self.over_tls: list[bool] = []

    async def handle_DATA(self, server, session, envelope):
        self.over_tls.append(server.transport.get_extra_info("ssl_object") is not None)
        return await super().handle_DATA(server, session, envelope)


class Accounts:
    """AUTH that accepts the tutorial's account only, and remembers who logged in."""

    def __init__(self) -> None:
        self.logins: list[str] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        self.logins.append(auth_data.login.decode())
        ok = (auth_data.login, auth_data.password) == (b"user@example.com", b"password")
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def tls_server(smtp_server_factory, tmp_path):
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST).configure_cert(context)
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    accounts = Accounts()
    # AUTH is offered only after STARTTLS (aiosmtpd's default), and MAIL needs STARTTLS first.
    server = smtp_server_factory(TlsRecordingHandler(), tls_context=context, require_starttls=True,
                                 authenticator=accounts)
    return server, accounts, str(cafile)


def tutorial_app(server_port: int, cafile: str, **extra_config):
    app = Flask(__name__)
    # The tutorial's configuration, pointed at the test server; MAIL_SSL_CAFILE trusts its private CA.
    app.config.update(MAIL_SERVER=HOST, MAIL_PORT=server_port, MAIL_USE_TLS=True,
                      MAIL_USERNAME='user@example.com', MAIL_PASSWORD='password', MAIL_SSL_CAFILE=cafile,
                      **extra_config)
    mail = Mail(app)

    @app.route('/send')
    def send_email():
        msg = Message('Hello', sender='user@example.com', recipients=['friend@example.com'])
        msg.body = 'This is a test email sent from Flask.'
        mail.send(msg)
        return 'Email sent!'

    return app, mail


def test_the_tutorial_sends_over_starttls_and_auth(tls_server) -> None:
    server, accounts, cafile = tls_server
    app, _ = tutorial_app(server.port, cafile)
    response = app.test_client().get('/send')
    assert response.status_code == 200 and response.get_data(as_text=True) == 'Email sent!'
    [received] = server.messages
    assert received.mail_from == "user@example.com" and received.rcpt_tos == ["friend@example.com"]
    assert b"Subject: Hello" in received.data and b"This is a test email sent from Flask." in received.data
    assert accounts.logins == ["user@example.com"]
    assert server.handler.over_tls == [True]
    Mail.state(app).sender.close()


def test_mail_is_the_gateway_extension() -> None:
    assert Mail is MailGateway


def test_without_the_private_ca_the_certificate_is_refused(tls_server, tmp_path) -> None:
    # Certificate verification is on by default: the tutorial's code against this server fails loudly.
    server, _, _ = tls_server
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    app, _ = tutorial_app(server.port, str(other))
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(smtplib.SMTPException) as caught:
        app.test_client().get('/send')
    assert isinstance(caught.value, PermanentDeliveryError)
    assert "certificate not trusted" in str(caught.value)
    assert server.messages == []


def test_with_testing_nothing_is_delivered_and_record_messages_sees_it(tls_server) -> None:
    server, accounts, cafile = tls_server
    app, mail = tutorial_app(server.port, cafile, TESTING=True)
    with app.app_context(), mail.record_messages() as outbox:
        assert app.test_client().get('/send').get_data(as_text=True) == 'Email sent!'
    assert server.messages == [] and accounts.logins == []
    [sent] = outbox
    assert isinstance(sent, Message) and sent.subject == 'Hello' and sent.recipients == ['friend@example.com']
    assert sent.gateway_status.accepted[0].email == 'friend@example.com'
    with app.app_context():
        [kept] = mail.outbox
        assert kept.subject == 'Hello' and kept.to == ['friend@example.com']
        assert kept.body == 'This is a test email sent from Flask.'
