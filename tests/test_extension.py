"""Library use: an existing Flask app gets the gateway's backends with MailGateway(app)."""

from __future__ import annotations

import pytest
from api_helpers import parsed
from flask import Flask
from flask_mailman import EmailMessage

from mail_gateway import MailGateway


def make_user_app() -> Flask:
    """The classic example from the README, written on the gateway."""
    app = Flask(__name__)

    @app.route("/send")
    def send() -> str:
        EmailMessage("Hello", "This is a test email sent from Flask.", "app@example.com",
                     ["friend@example.com"]).send()
        return "Email sent!"

    return app


def test_flask_mailman_send_goes_through_the_configured_backend(make_settings) -> None:
    app = make_user_app()
    MailGateway(app, settings=make_settings(mail_backend="memory"))
    response = app.test_client().get("/send")
    assert response.get_data(as_text=True) == "Email sent!"
    [stored] = MailGateway.state(app).backend.messages
    assert parsed(stored)["Subject"] == "Hello"
    assert stored.recipients == ("friend@example.com",)


def test_send_returns_a_count_and_leaves_the_result_on_the_message(make_settings) -> None:
    app = Flask(__name__)
    MailGateway(app, settings=make_settings(mail_backend="memory"))
    message = EmailMessage("Hi", "Body", "app@example.com", ["friend@example.com"])
    with app.app_context():
        assert message.send() == 1
    assert message.gateway_status.accepted[0].email == "friend@example.com"
    assert message.gateway_status.message_id == parsed(MailGateway.state(app).backend.messages[0])["Message-ID"]


def test_factory_pattern_and_several_apps_keep_their_own_state(make_settings) -> None:
    gateway = MailGateway()
    first, second = make_user_app(), make_user_app()
    gateway.init_app(first, settings=make_settings(mail_backend="memory"))
    gateway.init_app(second, settings=make_settings(mail_backend="memory"))
    first.test_client().get("/send")
    assert len(MailGateway.state(first).backend.messages) == 1
    assert MailGateway.state(second).backend.messages == []
    assert gateway.app is None  # Flask-Mail's mail.app: only the constructor's app is held
    with second.app_context():
        gateway.send(EmailMessage("Direct", "Body", "app@example.com", ["friend@example.com"]))
    assert len(MailGateway.state(second).backend.messages) == 1


def test_double_registration_is_an_error(make_settings) -> None:
    app = make_user_app()
    MailGateway(app, settings=make_settings(mail_backend="memory"))
    with pytest.raises(RuntimeError, match="already registered"):
        MailGateway(app, settings=make_settings(mail_backend="memory"))


def test_settings_come_from_the_environment_by_default(monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_ENV", "testing")
    app = make_user_app()
    MailGateway(app)
    assert MailGateway.state(app).backend.name == "memory"


def test_default_sender_applies_to_flask_mailman_messages(make_settings) -> None:
    app = Flask(__name__)
    MailGateway(app, settings=make_settings(mail_backend="memory", mail_default_sender="App <app@example.com>"))
    with app.app_context():
        EmailMessage("Hi", "Body", to=["friend@example.com"]).send()
    assert parsed(MailGateway.state(app).backend.messages[0])["From"] == "App <app@example.com>"


def test_options_no_backend_understands_are_ignored_with_a_warning(make_settings) -> None:
    app = Flask(__name__)
    MailGateway(app, settings=make_settings(mail_backend="memory"))
    with app.app_context(), pytest.warns(UserWarning, match="ignores foo"):
        MailGateway.state(app).mail.get_connection(foo="bar")
