"""Hostile values for the settings: each stops start-up with one line naming the setting and the fix, never a
traceback, a value quietly replaced, or a failure at the first send."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from mail_gateway.cli import main
from mail_gateway.errors import ConfigurationError
from mail_gateway.settings import load_settings
from mail_gateway.store.database import Store


def refusal(**config: object) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(app_config=config)
    return caught.value


def test_a_dotenv_file_that_is_not_utf8_stops_check_naming_the_file_and_line(tmp_path) -> None:
    (tmp_path / ".env").write_bytes(b"MAIL_BACKEND=console\nMAIL_SERVER=caf\xe9.example\n")
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # click's error, no traceback
    assert "configuration error: .env is not UTF-8 (line 2 holds the byte 0xe9); save it as UTF-8" in result.output


@pytest.mark.parametrize("variable", ["MAIL_FILE_PATH", "MAIL_SERVER", "GATEWAY_TEMPLATES_DIR", "MAIL_PASSWORD",
                                      "GATEWAY_SMTP_TLS_CERT", "MAIL_DEFAULT_SENDER"])
def test_a_nul_in_any_setting_stops_start_up_naming_it(tmp_path, variable) -> None:
    # A NUL ends a C string: os.mkdir, ssl and getaddrinfo raised "embedded null byte" tracebacks, at start-up
    # or at the first send. Environment variables cannot hold one; .env files and app.config can.
    (tmp_path / ".env").write_text(f"MAIL_BACKEND=memory\n{variable}=/tmp/a\0b\n")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable} is invalid (it holds a NUL character (U+0000); remove it)")
    assert refusal(**{variable: "a\0b"}).variable == variable


@pytest.mark.parametrize("variable", ["MAIL_SERVER", "MAIL_USERNAME", "GATEWAY_HOST", "MAIL_FILE_PATH"])
def test_an_environment_value_whose_bytes_are_not_utf8_stops_start_up(monkeypatch, variable) -> None:
    monkeypatch.setitem(os.environ, variable, os.fsdecode(b"caf\xe9.example"))  # as the OS hands it over
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.variable == variable and "\udce9" not in str(caught.value)
    assert "it holds bytes that are not UTF-8 (or a lone surrogate); write it in UTF-8" in str(caught.value)


def test_an_in_memory_sqlite_store_stops_start_up_naming_the_setting(monkeypatch) -> None:
    # It was taken, and every command that opened the store ended in SQLAlchemy's TypeError traceback about the
    # pool's arguments; had it opened, each connection would have seen an empty database of its own.
    monkeypatch.setenv("GATEWAY_DELIVERY", "queued")
    monkeypatch.setenv("GATEWAY_STORE_URL", "sqlite:///:memory:")
    says = "GATEWAY_STORE_URL is invalid (it names an in-memory SQLite database, which each connection sees as a new"
    for args in (["worker"], ["db", "upgrade"], ["check"]):
        done = CliRunner().invoke(main, args)
        assert done.exit_code == 1 and isinstance(done.exception, SystemExit), (args, done.output)
        assert says in done.output and "name a file" in done.output and "Traceback" not in done.output
    with pytest.raises(ConfigurationError, match="it names an in-memory SQLite database"):
        Store("sqlite:///:memory:")


@pytest.mark.parametrize("blank", ["", "  "])
def test_a_blank_file_backend_path_is_unset_not_the_working_directory(monkeypatch, blank) -> None:
    # pydantic read '' as Path('.'), and the file backend wrote mail into the working directory.
    monkeypatch.setenv("MAIL_BACKEND", "file")
    monkeypatch.setenv("MAIL_FILE_PATH", blank)
    with pytest.raises(ConfigurationError, match="MAIL_FILE_PATH is not set; the file backend needs a writable"):
        load_settings()


@pytest.mark.parametrize("variable", ["MAIL_SSL_CAFILE", "GATEWAY_SMTP_TLS_CERT", "MAIL_FILE_PATH",
                                      "GATEWAY_TEMPLATES_DIR"])
def test_a_blank_path_setting_is_unset(monkeypatch, variable) -> None:
    monkeypatch.setenv(variable, "")
    assert getattr(load_settings(), variable.lower()) is None


@pytest.mark.parametrize("variable", ["MAIL_FILE_PATH", "MAIL_SSL_CAFILE", "GATEWAY_SMTP_TLS_KEY",
                                      "GATEWAY_TEMPLATES_DIR"])
def test_a_path_with_a_space_at_either_end_stops_start_up(monkeypatch, tmp_path, variable) -> None:
    # ' /var/spool/gateway' is a relative path: the file backend made it under the working directory.
    monkeypatch.setenv(variable, f" {tmp_path}")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable} is invalid (it begins or ends with white space; remove it)")


@pytest.mark.parametrize("blank", ["", "  "])
def test_a_blank_webhook_url_and_secret_are_unset(monkeypatch, blank) -> None:
    # Their blank check was hidden by CoreSettings' validator of the same name, so a blank URL was refused as
    # holding a space, and a blank secret as not whsec_.
    monkeypatch.setenv("GATEWAY_DELIVERY", "queued")
    monkeypatch.setenv("GATEWAY_WEBHOOK_URL", blank)
    monkeypatch.setenv("GATEWAY_WEBHOOK_SECRET", blank)
    settings = load_settings()
    assert settings.gateway_webhook_url is None and settings.gateway_webhook_secret is None


def test_no_two_subjects_give_a_validator_one_name() -> None:
    # GatewaySettings inherits every subject's validators; two of one name and only the first in its bases runs.
    from mail_gateway.settings import GatewaySettings

    seen: dict[str, str] = {}
    for cls in GatewaySettings.__mro__:
        decorators = getattr(cls, "__pydantic_decorators__", None)
        if decorators is None:
            continue
        own = set(vars(cls)) & {*decorators.field_validators, *decorators.model_validators}
        for name in own:
            assert name not in seen, f"{cls.__name__} and {seen[name]} both define {name}"
            seen[name] = cls.__name__


@pytest.mark.parametrize(("value", "says"), [("inf", "must be a finite number"), ("1e400", "must be a finite number"),
                                             ("1e300", "must be at most 315360000")])
def test_an_outbox_max_age_beyond_ten_years_stops_start_up(monkeypatch, value, says) -> None:
    # inf was taken, and GET /v1/outbox answered 500 (int(inf) reporting the retention).
    monkeypatch.setenv("GATEWAY_OUTBOX_MAX_AGE", value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.variable == "GATEWAY_OUTBOX_MAX_AGE"
    assert str(caught.value).startswith(f"GATEWAY_OUTBOX_MAX_AGE {says}")
    monkeypatch.setenv("GATEWAY_OUTBOX_MAX_AGE", "315360000")
    assert load_settings().gateway_outbox_max_age == 315360000


@pytest.mark.parametrize("charset", ["rot13", "hex", "base64", "undefined", " utf-8 ", "utf 8"])
def test_a_default_charset_no_message_can_be_sent_in_stops_start_up(charset) -> None:
    # Taken by codecs.lookup(), each failed every send instead: 'is not the name of a character set', or for
    # undefined a UnicodeError traceback.
    refused = refusal(MAIL_DEFAULT_CHARSET=charset)
    assert refused.variable == "MAIL_DEFAULT_CHARSET"
    assert str(refused).startswith(f"app.config['MAIL_DEFAULT_CHARSET'] is invalid ({charset!r} is not the name of")
    assert load_settings(app_config={"MAIL_DEFAULT_CHARSET": "ISO-8859-1"}).mail_default_charset == "ISO-8859-1"


def test_a_message_in_the_undefined_charset_is_refused_naming_it() -> None:
    from flask import Flask
    from flask_mail import Message

    from mail_gateway import MailGateway
    from mail_gateway.errors import InvalidMessageError

    app = Flask(__name__)
    app.config.update(MAIL_BACKEND="memory")
    mail = MailGateway(app)
    with app.app_context(), pytest.raises(InvalidMessageError, match="charset 'undefined' is not the name"):
        mail.send(Message("Hi", sender="a@example.com", recipients=["b@example.com"], body="x", charset="undefined"))


@pytest.mark.parametrize("keys", ["k-123456,k-123456", "billing:k-123456,ops:k-123456", "k-123456,ops:k-123456"])
def test_an_api_key_listed_twice_stops_start_up_without_showing_it(monkeypatch, keys) -> None:
    # Under two names, the key kept only the last: GATEWAY_ALLOWED_SENDERS' key:billing= then named no key.
    monkeypatch.setenv("GATEWAY_API_KEYS", keys)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.variable == "GATEWAY_API_KEYS" and "k-123456" not in str(caught.value)
    assert "it lists one key twice (alone or under a name); list each key once" in str(caught.value)


@pytest.mark.parametrize("keys", [",", " , ,"])
def test_api_keys_of_commas_alone_are_refused_not_an_open_api(monkeypatch, keys) -> None:
    # They read as no keys at all, so /v1 was served without any, as if the variable were unset.
    monkeypatch.setenv("GATEWAY_API_KEYS", keys)
    with pytest.raises(ConfigurationError, match="GATEWAY_API_KEYS is invalid \\(it holds an empty key"):
        load_settings()
    monkeypatch.setenv("GATEWAY_API_KEYS", "  ")
    assert load_settings().api_keys == ()


@pytest.mark.parametrize(("server", "says"), [
    (" smtp.example.com ", "it holds a space or a control character; remove it"),
    ("smtp example.com", "it holds a space or a control character; remove it"),
    ("smtp.example.com:587", "it holds a port; give the host name alone, and the port in MAIL_PORT"),
    ("smtp://smtp.example.com", "it is a URL; set MAIL_URL to it, or MAIL_SERVER to the host name alone"),
    ("smtp.example.com/", "it is not a host name or an IP address"),
    ("faß.example", "it is not ASCII; write it in IDNA 2008 A-labels: xn--fa-hia.example"),
])
def test_a_mail_server_no_connection_can_reach_as_written_stops_start_up(monkeypatch, server, says) -> None:
    # Each was taken and every send failed on it ("Name or service not known"); faß.example reached fass.example.
    monkeypatch.setenv("MAIL_SERVER", server)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.variable == "MAIL_SERVER" and str(caught.value).startswith(f"MAIL_SERVER is invalid ({says}")


@pytest.mark.parametrize("server", ["mail_relay", "smtp.example.com.", "192.0.2.25", "2001:db8::25"])
def test_a_mail_server_name_or_address_is_taken(monkeypatch, server) -> None:
    monkeypatch.setenv("MAIL_SERVER", server)
    assert load_settings().mail_server == server


def test_a_blank_mail_server_is_unset_so_production_asks_for_it(monkeypatch) -> None:
    # '  ' counted as a configured server, and production started with nowhere to send.
    monkeypatch.setenv("GATEWAY_ENV", "production")
    monkeypatch.setenv("GATEWAY_ALLOW_ANONYMOUS", "true")
    monkeypatch.setenv("MAIL_SERVER", "  ")
    with pytest.raises(ConfigurationError, match="MAIL_SERVER is not set; production delivers over SMTP"):
        load_settings()


@pytest.mark.parametrize(("url", "says"), [
    ("smtp://smtp.example.com:0", "the port is empty or 0"),
    ("smtps://smtp.example.com:", "the port is empty or 0"),
    ("failover(smtp://a.example:25 smtp://b.example:0)", "the port is empty or 0"),
    ("smtp://user:secret-pw@smtp%20example.com:25", "its host is not a host name or an IP address"),
    ("smtp://smtp.faß.example:25", "its host is not ASCII; write it in IDNA 2008 A-labels: smtp.xn--fa-hia.example"),
])
def test_a_mail_url_port_of_0_or_a_host_no_connection_reaches_stops_start_up(monkeypatch, url, says) -> None:
    # urlsplit reads ':0' and ':' as no port: they were port 25 (465 for smtps://) without a word.
    monkeypatch.setenv("MAIL_URL", url)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.variable == "MAIL_URL" and says in str(caught.value) and "secret-pw" not in str(caught.value)


@pytest.mark.parametrize("url", ["smtp://relay.example:0", "smtp://relay.example:", "smtp://relay.example:25?tls=1",
                                 "smtp://relay.example:25#x", "smtp://relay example:25"])
def test_an_outbox_release_url_it_would_not_use_as_written_stops_start_up(monkeypatch, url) -> None:
    # ':0' and ':' were port 25, a query or fragment was dropped, and a space reached the connection.
    monkeypatch.setenv("GATEWAY_OUTBOX_RELEASE_URL", url)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.variable == "GATEWAY_OUTBOX_RELEASE_URL"


@pytest.mark.parametrize(("url", "says"), [
    ("https://mail.example.com:99999", "its port"),
    ("https://mail.example.com:0", "its port is empty or 0"),
    ("https://mail.example.com/\nBcc: x@example.com", "it holds a space or a control character"),
    ("https://mail.example.com/my links", "it holds a space or a control character"),
    ("https://ops:secret-pw@mail.example.com", "it holds a user name or password"),
    ("https://mail.faß.example", "its host is not ASCII; write it in IDNA 2008 A-labels: https://mail.xn--fa-hia"),
    ("https://mail.example.com/?", "without a query"),
])
def test_a_public_url_no_unsubscribe_link_could_carry_stops_start_up(monkeypatch, url, says) -> None:
    # Each was taken and written into every List-Unsubscribe: a link to no port, a line break that answered 500
    # to each send asking for a link, the password shown to every recipient.
    monkeypatch.setenv("GATEWAY_PUBLIC_URL", url)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.variable == "GATEWAY_PUBLIC_URL" and says in str(caught.value)
    assert "secret-pw" not in str(caught.value)


def test_a_public_url_with_a_path_and_port_is_taken(monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_PUBLIC_URL", "https://mail.example.com:8443/gateway/")
    assert load_settings().gateway_public_url == "https://mail.example.com:8443/gateway"


@pytest.mark.parametrize("url", ["failover(smtp://a.example:587 smtp://a.example:587)",
                                 "roundrobin(smtp://a.example:25 smtps://b.example smtp://u:secret-pw@A.example)"])
def test_an_upstream_listed_twice_in_a_group_stops_start_up(monkeypatch, url) -> None:
    # Taken: failover retried the server that had just failed, roundrobin sent it twice its share.
    monkeypatch.setenv("MAIL_URL", url)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.variable == "MAIL_URL" and "secret-pw" not in str(caught.value)
    assert "lists the upstream a.example:" in str(caught.value) and "twice; list each server once" in str(caught.value)


@pytest.mark.parametrize("key", ["MAIL_PORT", "MAIL_TIMEOUT", "GATEWAY_QUEUE_WORKERS", "MAIL_MAX_EMAILS"])
def test_true_or_false_for_a_number_in_app_config_is_refused(key) -> None:
    # pydantic took MAIL_PORT=True as port 1 and MAIL_TIMEOUT=True as one second.
    refused = refusal(**{key: True})
    assert refused.variable == key
    assert str(refused).startswith(f"app.config[{key!r}] is invalid (it is true or false, not a number)")


def test_true_or_false_settings_still_take_booleans() -> None:
    settings = load_settings(app_config={"MAIL_USE_TLS": True, "GATEWAY_OUTBOX_ENABLED": False, "MAIL_PORT": 587})
    assert (settings.mail_use_tls, settings.gateway_outbox_enabled, settings.mail_port) == (True, False, 587)


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e400"])
@pytest.mark.parametrize("variable", ["MAIL_TIMEOUT", "GATEWAY_QUEUE_LEASE", "GATEWAY_SMTP_TIMEOUT"])
def test_nan_and_infinity_are_refused_as_no_number(monkeypatch, variable, value) -> None:
    # nan compares false with every bound and was refused as "must be at most 600 (got 'nan')".
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable} must be a finite number, not nan or inf (got {value!r}); set it")


@pytest.mark.parametrize("value", ["abc", 0, True])
def test_a_bad_mail_max_emails_is_refused_once_under_its_own_name(value) -> None:
    # MAIL_MAX_EMAILS is Flask-Mail's name of MAIL_POOL_MAX_MESSAGES. Before, its value was copied to that setting
    # before either was read, so a bad one was refused twice, the second line naming a setting never set.
    refused = refusal(MAIL_MAX_EMAILS=value)
    assert refused.variable == "MAIL_MAX_EMAILS" and str(refused).startswith("app.config['MAIL_MAX_EMAILS']")
    assert "\n" not in str(refused) and "MAIL_POOL_MAX_MESSAGES must" not in str(refused)


def test_mail_max_emails_sets_the_pool_limit() -> None:
    assert load_settings(app_config={"MAIL_MAX_EMAILS": "7"}).mail_pool_max_messages == 7


@pytest.mark.parametrize("variable", ["GATEWAY_MAX_MESSAGE_BYTES", "GATEWAY_SMTP_MAX_MESSAGE_BYTES"])
def test_a_message_size_limit_past_a_gibibyte_stops_start_up_naming_it(monkeypatch, variable) -> None:
    # 10**30 was taken: the SMTP ingress advertised it in EHLO as a 31-digit SIZE, where RFC 1870 allows 20.
    monkeypatch.setenv(variable, str(10**30))
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.variable == variable and "1073741824" in str(caught.value)
    monkeypatch.setenv(variable, str(1024**3))
    assert getattr(load_settings(), variable.lower()) == 1024**3
