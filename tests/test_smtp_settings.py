"""The production SMTP settings: defaults, and start-up errors that name the variable and the fix."""

from __future__ import annotations

import pytest

from mail_gateway.errors import ConfigurationError
from mail_gateway.settings import load_settings


def test_defaults() -> None:
    settings = load_settings(_env_file=None)
    assert (settings.mail_pool_size, settings.mail_pool_idle_timeout, settings.mail_pool_max_messages) == (8, 30, 100)
    assert (settings.mail_retry_attempts, settings.mail_retry_backoff, settings.mail_retry_deadline) == (3, 0.5, 30)
    assert settings.smtp_upstreams()[0] == "single"


@pytest.mark.parametrize(
    ("variable", "value", "fix"),
    [
        ("MAIL_POOL_SIZE", "0", "1 to 256"),
        ("MAIL_POOL_IDLE_TIMEOUT", "-1", "more than 0"),
        ("MAIL_POOL_MAX_MESSAGES", "many", "at least 1"),
        ("MAIL_RETRY_ATTEMPTS", "0", "1 to 20"),
        ("MAIL_RETRY_BACKOFF", "0", "more than 0"),
        ("MAIL_RETRY_DEADLINE", "1000", "at most 600"),
        ("MAIL_UPSTREAM_REST", "-5", "0 to 3600"),
    ],
)
def test_invalid_values_name_the_variable_and_the_fix(monkeypatch, variable, value, fix) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable} must be ") and fix in str(caught.value)


def test_the_separate_variables_make_one_upstream(monkeypatch) -> None:
    for name, value in {"MAIL_SERVER": "mx.example.com", "MAIL_PORT": "465", "MAIL_USE_SSL": "true",
                        "MAIL_USERNAME": "app", "MAIL_PASSWORD": "pw-123"}.items():
        monkeypatch.setenv(name, value)
    strategy, [upstream] = load_settings(_env_file=None).smtp_upstreams()
    assert (strategy, upstream.name, upstream.security, upstream.username) == ("single", "mx.example.com:465",
                                                                              "ssl", "app")
    assert upstream.password.get_secret_value() == "pw-123" and "pw-123" not in repr(upstream)


@pytest.mark.parametrize(("env", "variable"), [
    ({"MAIL_SERVER": "mx.example.com", "MAIL_USERNAME": "app", "MAIL_PASSWORD": "geheimes-Passwört"}, "MAIL_PASSWORD"),
    ({"MAIL_SERVER": "mx.example.com", "MAIL_USERNAME": "jürgen", "MAIL_PASSWORD": "geheim-1234"}, "MAIL_USERNAME"),
    ({"MAIL_URL": "smtp://app:geheimes-Passw%C3%B6rt@mx.example.com:587"}, "MAIL_URL"),
    ({"MAIL_URL": "failover(smtp://a.example.com smtp://app:geheimes-Passwört@mx.example.com)"}, "MAIL_URL"),
])
def test_a_login_smtplib_cannot_send_stops_start_up_never_showing_it(monkeypatch, env, variable) -> None:
    # smtplib encodes AUTH as ASCII: each send raised UnicodeEncodeError, a 500 whose logged traceback showed the
    # password's first non-ASCII character and its position.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    assert caught.value.variable == variable and "ASCII" in str(caught.value)
    assert "geheim" not in str(caught.value) and "ö" not in str(caught.value), caught.value
