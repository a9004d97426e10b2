"""Settings as a user sets them: environment variables and a .env file."""

from __future__ import annotations

import pytest

from mail_gateway import create_app
from mail_gateway.backends.registry import create_backend
from mail_gateway.errors import ConfigurationError
from mail_gateway.settings import load_settings


def test_defaults_are_development_on_the_console() -> None:
    settings = load_settings()
    assert settings.gateway_env == "development"
    assert settings.backend_name == "console"
    assert settings.mail_timeout == 10
    assert (settings.gateway_host, settings.gateway_port) == ("127.0.0.1", 8000)


@pytest.mark.parametrize(("env", "backend"), [("development", "console"), ("testing", "memory")])
def test_the_environment_picks_the_default_backend(monkeypatch, env, backend) -> None:
    monkeypatch.setenv("GATEWAY_ENV", env)
    assert load_settings().backend_name == backend


@pytest.mark.parametrize(("env", "backend"), [("development", "smtp"), ("testing", "memory"),
                                               ("production", "smtp")])
def test_a_configured_server_means_smtp_except_in_tests(monkeypatch, env, backend) -> None:
    # Configuring a server means sending to it (as in Flask-Mail and flask-mailman); testing never sends.
    monkeypatch.setenv("GATEWAY_ENV", env)
    monkeypatch.setenv("MAIL_SERVER", "smtp.example.com")
    assert load_settings().backend_name == backend


def test_mail_backend_overrides_the_environment_default(monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_ENV", "production")
    monkeypatch.setenv("GATEWAY_ALLOW_ANONYMOUS", "true")
    monkeypatch.setenv("MAIL_BACKEND", "Memory")
    assert load_settings().backend_name == "memory"


def test_values_are_typed_and_coerced(monkeypatch) -> None:
    monkeypatch.setenv("MAIL_USE_TLS", "false")
    monkeypatch.setenv("MAIL_USE_SSL", "1")
    monkeypatch.setenv("MAIL_PORT", "465")
    monkeypatch.setenv("MAIL_TIMEOUT", "2.5")
    settings = load_settings()
    assert settings.mail_use_tls is False and settings.mail_use_ssl is True
    assert settings.mail_port == 465 and settings.mail_timeout == 2.5


def test_a_dotenv_file_in_the_working_directory_is_read(tmp_path, monkeypatch) -> None:
    (tmp_path / ".env").write_text("MAIL_BACKEND=memory\nMAIL_DEFAULT_SENDER=App <app@example.com>\n")
    settings = load_settings()
    assert settings.backend_name == "memory"
    assert settings.mail_default_sender == "App <app@example.com>"
    monkeypatch.setenv("MAIL_BACKEND", "console")  # the environment wins over the file
    assert load_settings().backend_name == "console"


def test_the_password_is_secret_everywhere(monkeypatch) -> None:
    monkeypatch.setenv("MAIL_PASSWORD", "hunter2-secret")
    monkeypatch.setenv("MAIL_PORT", "not-a-port")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "hunter2-secret" not in str(caught.value)
    monkeypatch.setenv("MAIL_PORT", "25")
    settings = load_settings()
    assert "hunter2-secret" not in repr(settings) and "hunter2-secret" not in str(settings.model_dump())
    assert settings.mail_password.get_secret_value() == "hunter2-secret"


@pytest.mark.parametrize(
    ("env", "variable", "fix"),
    [
        ({"MAIL_PORT": "abc"}, "MAIL_PORT", "port number"),
        ({"MAIL_PORT": "70000"}, "MAIL_PORT", "port number"),
        ({"GATEWAY_PORT": "0"}, "GATEWAY_PORT", "port number"),
        ({"MAIL_USE_TLS": "maybe"}, "MAIL_USE_TLS", "true or false"),
        ({"GATEWAY_ENV": "staging"}, "GATEWAY_ENV", "development, testing or production"),
        ({"MAIL_TIMEOUT": "0"}, "MAIL_TIMEOUT", "greater than 0"),
        ({"MAIL_USE_TLS": "true", "MAIL_USE_SSL": "true"}, "MAIL_USE_SSL", "set only one"),
        ({"GATEWAY_ENV": "production", "GATEWAY_API_KEYS": "k1"}, "MAIL_SERVER", "set MAIL_SERVER"),
        ({"MAIL_BACKEND": "file"}, "MAIL_FILE_PATH", "writable directory"),
    ],
)
def test_invalid_settings_name_the_variable_and_the_fix(monkeypatch, env, variable, fix) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert variable in str(caught.value)
    assert fix in str(caught.value)


@pytest.mark.parametrize(
    ("env", "variable", "fix"),
    [
        ({"MAIL_BACKEND": "carrier-pigeon"}, "MAIL_BACKEND", "smtp, console, file, memory"),
        ({"MAIL_DEFAULT_SENDER": "not an address"}, "MAIL_DEFAULT_SENDER", "app@example.com"),
    ],
)
def test_what_the_backends_and_addresses_judge_fails_when_the_gateway_starts(monkeypatch, env, variable,
                                                                            fix) -> None:
    # Settings know only the form of these; the backend registry and the address parser judge them, when the
    # gateway is built, before anything is served.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        create_app(load_settings())
    assert caught.value.variable == variable and fix in str(caught.value)


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("no_such_package.mod.Backend", "cannot be imported"),
        ("collections.OrderedDict", "is not a mail backend"),
        ("mail_gateway.backends.base.NoSuchClass", "is not a mail backend"),
    ],
)
def test_a_dotted_path_that_is_not_a_backend_fails_at_start_up(make_settings, backend, message) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        create_backend(make_settings(mail_backend=backend))
    assert caught.value.variable == "MAIL_BACKEND"


def test_a_dotted_path_to_a_backend_class_is_used(make_settings) -> None:
    backend = create_backend(make_settings(mail_backend="backends.memory.MemoryBackend"))
    assert backend.name == "memory"


def test_an_unwritable_file_path_fails_at_start_up(make_settings, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigurationError, match="MAIL_FILE_PATH") as caught:
        create_backend(make_settings(mail_backend="file", mail_file_path=blocker / "outbox"))
    assert caught.value.variable == "MAIL_FILE_PATH"
