"""``app.config`` as a source of settings: what a Flask-Mail or flask-mailman app already has, read with the
environment's types and validation, the environment overriding it; keys of the anchors honoured, mapped or
refused; TESTING and MAIL_SUPPRESS_SEND keeping mail in memory."""

from __future__ import annotations

import logging

import pytest
from aiosmtpd.smtp import AuthResult
from flask import Flask
from flask_mailman import EmailMessage
from smtp_server import HOST

from mail_gateway import MailGateway
from mail_gateway.errors import ConfigurationError


def app_with(**config) -> Flask:
    app = Flask(__name__)
    app.config.update(config)
    MailGateway(app)
    return app


def settings_of(app: Flask):
    return MailGateway.state(app).settings


def send_hello(app: Flask) -> int:
    with app.app_context():
        return EmailMessage("Hello", "Body", "app@example.com", ["friend@example.com"]).send()


def test_mail_settings_in_app_config_are_used(smtp_server) -> None:
    # Before: app.config was ignored, the console backend printed the message and "Email sent!" was a lie.
    app = app_with(MAIL_SERVER=HOST, MAIL_PORT=smtp_server.port, MAIL_DEFAULT_SENDER="App <app@example.com>")
    assert send_hello(app) == 1
    [received] = smtp_server.messages
    assert received.rcpt_tos == ["friend@example.com"]
    MailGateway.state(app).sender.close()


def test_values_have_the_environments_types_and_validation() -> None:
    settings = settings_of(app_with(MAIL_SERVER="smtp.example.com", MAIL_PORT="587", MAIL_USE_TLS="true",
                                    MAIL_TIMEOUT=2, MAIL_USERNAME=None))
    assert (settings.mail_port, settings.mail_use_tls, settings.mail_timeout) == (587, True, 2.0)
    assert settings.mail_username is None  # None counts as unset, as in MAIL_USERNAME = os.environ.get(...)


@pytest.mark.parametrize(("config", "named", "fix"), [
    ({"MAIL_PORT": "abc"}, "app.config['MAIL_PORT']", "port number"),
    ({"MAIL_USE_TLS": True, "MAIL_USE_SSL": True}, "MAIL_USE_SSL", "set only one"),
    ({"MAIL_DEFAULT_SENDER": "not an address"}, "MAIL_DEFAULT_SENDER", "app@example.com"),
    ({"MAIL_SEVRER": "smtp.example.com"}, "app.config['MAIL_SEVRER']", "did you mean MAIL_SERVER?"),
    ({"GATEWAY_API_KEY": "k"}, "app.config['GATEWAY_API_KEY']", "did you mean GATEWAY_API_KEYS?"),
])
def test_a_bad_key_fails_at_init_app_naming_it(config, named, fix) -> None:
    with pytest.raises(ConfigurationError) as caught:
        app_with(**config)
    assert named in str(caught.value) and fix in str(caught.value)


def test_the_environment_overrides_app_config(monkeypatch) -> None:
    config = {"MAIL_SERVER": "smtp.example.com", "MAIL_PORT": 587, "MAIL_BACKEND": "smtp"}
    monkeypatch.setenv("MAIL_BACKEND", "memory")
    monkeypatch.setenv("MAIL_PORT", "2525")
    settings = settings_of(app_with(**config))
    assert settings.backend_name == "memory" and settings.mail_port == 2525
    assert settings.mail_server == "smtp.example.com"  # what the environment does not set comes from app.config


def test_an_environment_value_that_fixes_a_bad_app_config_value_wins(monkeypatch) -> None:
    monkeypatch.setenv("MAIL_PORT", "25")
    assert settings_of(app_with(MAIL_PORT="abc")).mail_port == 25


def test_a_server_without_a_backend_means_smtp_and_nothing_configured_means_the_console(caplog) -> None:
    assert settings_of(app_with(MAIL_SERVER="smtp.example.com")).backend_name == "smtp"
    with caplog.at_level(logging.WARNING, logger="mail_gateway"):
        app = app_with()
        assert MailGateway.state(app).backend.name == "console"
        send_hello(app)
        send_hello(app)
    notices = [r for r in caplog.records if "printed to the console" in r.getMessage()]
    assert len(notices) == 1 and "MAIL_SERVER" in notices[0].getMessage()


def test_testing_keeps_mail_in_memory_even_with_a_server(smtp_server) -> None:
    # Before: TESTING was ignored.
    app = app_with(TESTING=True, MAIL_SERVER=HOST, MAIL_PORT=smtp_server.port)
    assert MailGateway.state(app).backend.name == "memory"
    assert send_hello(app) == 1
    assert smtp_server.messages == []
    with app.app_context():
        assert [m.subject for m in MailGateway.state(app).mail.outbox] == ["Hello"]


def test_testing_uses_a_backend_named_explicitly(smtp_server) -> None:
    app = app_with(TESTING=True, MAIL_BACKEND="smtp", MAIL_SERVER=HOST, MAIL_PORT=smtp_server.port)
    send_hello(app)
    assert len(smtp_server.messages) == 1
    MailGateway.state(app).sender.close()


def test_mail_suppress_send_is_honoured_both_ways(smtp_server) -> None:
    assert MailGateway.state(app_with(MAIL_SUPPRESS_SEND=True, MAIL_SERVER=HOST)).backend.name == "memory"
    app = app_with(TESTING=True, MAIL_SUPPRESS_SEND=False, MAIL_SERVER=HOST, MAIL_PORT=smtp_server.port)
    send_hello(app)
    assert len(smtp_server.messages) == 1
    MailGateway.state(app).sender.close()
    with pytest.raises(ConfigurationError, match="MAIL_SUPPRESS_SEND"):
        app_with(MAIL_SUPPRESS_SEND=True, MAIL_BACKEND="smtp", MAIL_SERVER=HOST)


@pytest.mark.parametrize(("name", "backend"), [
    ("locmem", "memory"), ("dummy", "memory"), ("console", "console"), ("smtp", "smtp"),
    ("flask_mailman.backends.locmem", "memory"), ("flask_mailman.backends.locmem.EmailBackend", "memory"),
    ("flask_mailman.backends.console.EmailBackend", "console"),
    ("mail_gateway.backends.memory.MemoryBackend", "memory"),
])
def test_flask_mailman_backend_names_map_to_the_gateways_backends(name, backend) -> None:
    app = app_with(MAIL_BACKEND=name, MAIL_SERVER=HOST)
    # Each is the gateway's own backend, so every message takes the gateway's send path.
    assert MailGateway.state(app).backend.name == backend
    assert type(MailGateway.state(app).backend).__module__.startswith("mail_gateway.backends")


def test_a_flask_mailman_backend_class_in_app_config_maps_too() -> None:
    from flask_mailman.backends import locmem

    assert MailGateway.state(app_with(MAIL_BACKEND=locmem.EmailBackend)).backend.name == "memory"


def test_a_file_backend_from_flask_mailman_config(tmp_path) -> None:
    app = app_with(MAIL_BACKEND="file", MAIL_FILE_PATH=str(tmp_path / "mail"))
    send_hello(app)
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1


@pytest.mark.parametrize(("name", "says"), [
    ("flask_mailman.backends.carrier", "not one of flask-mailman's backends"),
    ("flask_mailman.backends.base.BaseEmailBackend", "not one of flask-mailman's backends"),
    ("tests.test_app_config.ThirdPartyMailmanBackend", "flask-mailman or Django backend"),
])
def test_backends_the_gateway_cannot_honour_are_refused(name, says) -> None:
    with pytest.raises(ConfigurationError, match="MAIL_BACKEND") as caught:
        app_with(MAIL_BACKEND=name)
    assert says in str(caught.value)


class ThirdPartyMailmanBackend:
    """What a flask-mailman backend of another package looks like: it would bypass the gateway."""

    def send_messages(self, messages):  # pragma: no cover - never called
        return len(messages)


@pytest.mark.parametrize(("config", "fix"), [
    ({"MAIL_DEBUG": True}, "mail_gateway.delivery logger"),
    ({"MAIL_DEBUG": 1}, "mail_gateway.delivery logger"),
    ({"MAIL_SEND_OPTIONS": ["SMTPUTF8"]}, "chooses the MAIL FROM options itself"),
    ({"MAIL_DEFAULT_CHARSET": "klingon-8"}, "character set"),
    ({"MAIL_MAX_EMAILS": 5, "MAIL_POOL_MAX_MESSAGES": 7}, "set only MAIL_POOL_MAX_MESSAGES"),
])
def test_anchor_keys_the_gateway_would_not_honour_are_refused_saying_what_to_use(config, fix) -> None:
    with pytest.raises(ConfigurationError) as caught:
        app_with(**config)
    assert fix in str(caught.value)


def test_anchor_keys_at_values_the_gateway_honours_are_accepted() -> None:
    settings = settings_of(app_with(MAIL_DEBUG=False, MAIL_SEND_OPTIONS=[], MAIL_USE_LOCALTIME=False,
                                    MAIL_MAX_EMAILS=5, MAIL_DEFAULT_SENDER=("App, Inc.", "app@example.com")))
    assert settings.mail_pool_max_messages == 5
    assert settings.mail_default_sender == '"App, Inc." <app@example.com>'


def test_mail_default_charset_is_used_for_messages_without_an_encoding() -> None:
    app = app_with(TESTING=True, MAIL_DEFAULT_CHARSET="iso-8859-1")
    send_hello(app)
    with app.app_context():
        [sent] = MailGateway.state(app).mail.outbox
    assert sent.message().get_content_charset() == "iso-8859-1"


def test_library_use_in_production_needs_no_api_keys(monkeypatch) -> None:
    # Before: MailGateway(app) refused to start because GATEWAY_API_KEYS was unset, for an app that never
    # serves the gateway's HTTP API.
    monkeypatch.setenv("GATEWAY_ENV", "production")
    monkeypatch.setenv("MAIL_SERVER", "smtp.example.com")
    assert settings_of(app_with()).backend_name == "smtp"


def test_explicit_settings_replace_app_config(make_settings) -> None:
    app = Flask(__name__)
    app.config.update(MAIL_SERVER="smtp.example.com", MAIL_PORT="not read")
    MailGateway(app, settings=make_settings(mail_backend="memory"))
    assert settings_of(app).mail_server is None


def test_errors_about_app_config_never_show_a_secret() -> None:
    with pytest.raises(ConfigurationError) as caught:
        app_with(MAIL_PORT="abc", MAIL_PASSWORD="hunter2-secret", MAIL_URL="smtp://u:hunter2-secret@host:99999")
    assert "MAIL_PORT" in str(caught.value) and "MAIL_URL" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    app = app_with(TESTING=True, MAIL_PASSWORD="hunter2-secret")
    assert "hunter2" not in repr(settings_of(app)) and "hunter2" not in repr(app.extensions["mailman"])


def test_an_all_digit_login_read_by_from_prefixed_env_is_used_as_written(monkeypatch, smtp_server_factory) -> None:
    # Flask's from_prefixed_env() reads each variable as JSON, so FLASK_MAIL_PASSWORD=123456 arrives as an int;
    # before, init_app refused it ("must be text"), while the digits are exactly what was written.
    seen: list[tuple[str, str]] = []

    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
        seen.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=True)

    server = smtp_server_factory(authenticator=authenticator, auth_require_tls=False)
    for name, value in {"SERVER": HOST, "PORT": str(server.port), "USERNAME": "1234", "PASSWORD": "123456",
                        "DEFAULT_SENDER": '"app@example.com"'}.items():
        monkeypatch.setenv(f"FLASK_MAIL_{name}", value)
    app = Flask(__name__)
    app.config.from_prefixed_env()
    assert (app.config["MAIL_USERNAME"], app.config["MAIL_PASSWORD"]) == (1234, 123456)
    MailGateway(app)
    assert send_hello(app) == 1
    assert seen == [("1234", "123456")]
    MailGateway.state(app).sender.close()


@pytest.mark.parametrize("value", [1.5, True])
def test_a_login_json_read_as_another_kind_of_value_is_refused_saying_to_quote_it(value) -> None:
    # 1.50 read as JSON is 1.5: the text written is lost, so guessing it back could log in with the wrong password.
    with pytest.raises(ConfigurationError) as caught:
        app_with(MAIL_SERVER="smtp.example.com", MAIL_USERNAME="app", MAIL_PASSWORD=value)
    assert "app.config['MAIL_PASSWORD']" in str(caught.value) and "quote" in str(caught.value)
