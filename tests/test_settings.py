"""Settings as a user sets them: environment variables and a .env file."""

from __future__ import annotations

import base64

import pytest
from click.testing import CliRunner
from standardwebhooks import Webhook

from mail_gateway import create_app
from mail_gateway.backends.registry import create_backend
from mail_gateway.cli import main
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


def _webhook_env(monkeypatch, secret: str) -> None:
    monkeypatch.setenv("GATEWAY_DELIVERY", "queued")
    monkeypatch.setenv("GATEWAY_WEBHOOK_URL", "https://hooks.example.com/mail")
    monkeypatch.setenv("GATEWAY_WEBHOOK_SECRET", secret)


@pytest.mark.parametrize(("variable", "value"), [
    ("GATEWAY_UNSUBSCRIBE_SECRET", "Sec\udcffret-0123456789abcdefghijklmnopqrstuvwxyz"),
    ("GATEWAY_OUTBOX_SESSION_SECRET", "Sec\udcffret-0123456789abcdefghijklmnopqrstuvwxyz"),
    ("GATEWAY_SMTP_USERS", "app:Sec\udcffret-0123456789"),
    ("GATEWAY_STORE_URL", "postgresql://gateway:Sec\udcffret-0123456789@127.0.0.1:9/mail"),
], ids=["unsubscribe", "outbox-session", "smtp-users", "store-url"])
def test_a_secret_whose_bytes_are_not_utf_8_stops_start_up_in_one_line(monkeypatch, variable, value) -> None:
    # Bytes that are not UTF-8 reach os.environ as lone surrogates (\udcff for 0xff): the signer, the outbox's
    # cookies, the ingress and psycopg each ended start-up in a UnicodeEncodeError traceback naming the byte and
    # its position in the secret.
    monkeypatch.setenv("GATEWAY_PUBLIC_URL", "https://mail.example.com")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert caught.value.variable == variable and "UTF-8" in message and "\n" not in message, message
    assert "Sec" not in message and "\udcff" not in message and "position" not in message


@pytest.mark.parametrize("size", [16, 24, 32, 64])
@pytest.mark.parametrize("padded", [True, False])
def test_a_standard_webhook_secret_of_any_length_is_accepted(monkeypatch, size, padded) -> None:
    # whsec_ and the base64 of the key, as Standard Webhooks endpoints issue them: with padding when the key's
    # length is no multiple of 3 (16, 32 and 64 bytes), and without it (as some tools write them).
    encoded = base64.b64encode(bytes(range(7, 7 + size))).decode()
    secret = "whsec_" + (encoded if padded else encoded.rstrip("="))
    _webhook_env(monkeypatch, secret)
    settings = load_settings()
    assert settings.gateway_webhook_secret.get_secret_value() == secret
    assert Webhook(secret)._whsecret == bytes(range(7, 7 + size))  # the key the receiver verifies with


@pytest.mark.parametrize("secret", [
    "whsec_" + base64.b64encode(bytes(15)).decode(),  # shorter than 16 bytes
    "whsec_",
    "whsec_!!!!",  # nothing of base64 in it: standardwebhooks refuses it as empty
    "whsec_" + "A" * 33,  # 4n+1 base64 characters, which standardwebhooks cannot decode
    base64.b64encode(bytes(32)).decode(),  # no whsec_ prefix
    # Characters base64 does not have, which standardwebhooks skips: the key signed with was not the one written,
    # and a receiver that decodes strictly (Go's, JavaScript's) refuses the secret or verifies with another key.
    "whsec_!" + base64.b64encode(bytes(range(24))).decode(),
    "whsec_" + base64.b64encode(bytes(range(12))).decode() + " " + base64.b64encode(bytes(range(12))).decode(),
    "whsec_" + base64.urlsafe_b64encode(bytes(range(60, 84))).decode().replace("/", "_"),  # URL alphabet: -_
])
def test_a_webhook_secret_that_cannot_sign_is_refused_without_showing_it(monkeypatch, secret) -> None:
    _webhook_env(monkeypatch, secret)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert caught.value.variable == "GATEWAY_WEBHOOK_SECRET" and "at least 16 bytes in base64" in message
    payload = secret.removeprefix("whsec_")
    assert not payload or payload not in message


def test_while_a_webhook_secret_is_replaced_the_one_that_cannot_sign_is_named_by_its_place(monkeypatch) -> None:
    good, bad = "whsec_" + base64.b64encode(bytes(range(24))).decode(), "whsec_" + base64.b64encode(bytes(9)).decode()
    _webhook_env(monkeypatch, f"{good}  {bad}")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert "its secret number 2 of 2 is not whsec_" in message and "separated by spaces" in message
    assert good.removeprefix("whsec_") not in message and bad.removeprefix("whsec_") not in message
    _webhook_env(monkeypatch, f"{good} {good.replace('AAEC', 'AQID')}")
    assert len(load_settings().webhook_secrets) == 2


WEBHOOK_SECRET = "whsec_" + base64.b64encode(bytes(range(24))).decode()


def _refused_webhook_url(monkeypatch, url: str) -> list[str]:
    """The start-up messages of ``url`` as GATEWAY_WEBHOOK_URL and as an inbound route's URL, each checked to name
    its variable."""
    said = []
    for name, value in (("GATEWAY_WEBHOOK_URL", url), ("GATEWAY_INBOUND_ROUTES", f"in@example.com={url}")):
        with monkeypatch.context() as env:
            env.setenv("GATEWAY_DELIVERY", "queued")
            env.setenv("GATEWAY_WEBHOOK_SECRET", WEBHOOK_SECRET)
            env.setenv(name, value)
            with pytest.raises(ConfigurationError) as caught:
                load_settings()
        assert caught.value.variable == name
        said.append(str(caught.value))
    return said


@pytest.mark.parametrize("url", ["https://hook:s3cret-pass@hooks.example.com/in", "https://s3cret-token@hooks.example.com/in",
                                 "http://:s3cret-pass@hooks.example.com/in"])
def test_a_webhook_url_with_a_password_is_refused_without_showing_it(monkeypatch, url) -> None:
    # The sender never sent it (no Basic auth), and every failed attempt's log line wrote the URL whole.
    for message in _refused_webhook_url(monkeypatch, url):
        assert "user:password@" in message and "s3cret" not in message


@pytest.mark.parametrize(("url", "said"), [
    ("http://", "http:// or https://"), ("https:///in", "http:// or https://"),
    ("https://hooks.example.com:99999/in", "port"), ("https://hooks.example.com:https/in", "port"),
    ("https://hooks.example.com:0/in", "port"), ("https://[::1/in", "IPv6"),
    ("http://[fe80::1%25eth0]:8080/in", "zone"),
    ("https://hooks example.com/in", "space"), ("https://hooks.example.com/in\r\nX-Forged: 1", "control"),
    ("https://hooks.example.com/\tin", "control"), ("https://hooks.example.com/" + "a" * 8192, "8192"),
])
def test_a_webhook_url_the_sender_would_not_send_as_written_stops_start_up(monkeypatch, url, said) -> None:
    # Each was taken and failed every event for a day, or (CR, LF and tab, which urlsplit drops) went elsewhere.
    webhook, inbound = _refused_webhook_url(monkeypatch, url)
    assert said in webhook, webhook
    assert said in inbound or "route 2 is not address=URL" in inbound, inbound  # routes are split at spaces


def test_a_webhook_url_with_a_non_ascii_host_is_refused_naming_its_a_label_form(monkeypatch) -> None:
    # The sender encoded the host with Python's IDNA 2003 codec, which maps faß to fass: the signed events went to
    # another domain's server.
    for message in _refused_webhook_url(monkeypatch, "https://hooks.faß.example/in"):
        assert "https://hooks.xn--fa-hia.example" in message
    for message in _refused_webhook_url(monkeypatch, "https://hooks.\u2603.example/in"):
        assert "IDNA 2008" in message


def test_a_webhook_url_of_any_case_and_an_ipv6_address_is_taken(monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_DELIVERY", "queued")
    monkeypatch.setenv("GATEWAY_WEBHOOK_SECRET", WEBHOOK_SECRET)
    for url in ("HTTPS://Hooks.Example.com/In", "http://[::1]:8080/in?a=b%20c", "https://hooks.xn--fa-hia.example/"):
        monkeypatch.setenv("GATEWAY_WEBHOOK_URL", url)
        assert load_settings().gateway_webhook_url == url


@pytest.mark.parametrize(("name", "closest"), [("GATEWAY_ALLOWED_HOST", "GATEWAY_ALLOWED_HOSTS"),
                                             ("GATEWAY_QUEUE_WORKRES", "GATEWAY_QUEUE_WORKERS")])
def test_an_unknown_gateway_variable_is_refused_naming_the_closest_setting(monkeypatch, name, closest) -> None:
    monkeypatch.setenv(name, "mail.example.com")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert caught.value.variable == name and "\n" not in message and "mail.example.com" not in message
    assert message.startswith(f"{name} is not a setting of mail-gateway; did you mean {closest}? remove it")


def test_a_setting_that_does_not_exist_stops_check(monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_ARC_KEYS", "selector:key.pem")
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 1 and "configuration ok" not in result.output
    assert "GATEWAY_ARC_KEYS is not a setting of mail-gateway; did you mean GATEWAY_" in result.output


def test_an_unknown_gateway_variable_in_the_dotenv_file_is_refused(tmp_path) -> None:
    (tmp_path / ".env").write_text("GATEWAY_QUEUE_WORKER=4\n")
    refused = "GATEWAY_QUEUE_WORKER in .env is not a setting.* did you mean GATEWAY_QUEUE_WORKERS"
    with pytest.raises(ConfigurationError, match=refused):
        load_settings()
    assert load_settings(_env_file=None).gateway_queue_workers == 16  # no file read, nothing to refuse


def test_known_names_and_other_programs_mail_variables_are_accepted(monkeypatch) -> None:
    # MAIL_* variables of the environment may belong to other programs (mail clients, cron); only an app's own
    # app.config keys and the GATEWAY_* namespace are the gateway's alone.
    monkeypatch.setenv("MAIL_SPOOL_DIRECTORY", "/var/mail")
    monkeypatch.setenv("GATEWAY_INBOX_ENABLED", "false")  # an earlier name, still read
    monkeypatch.setenv("gateway_port", "8025")  # names are read without regard to case
    settings = load_settings()
    assert settings.outbox_enabled is False and settings.gateway_port == 8025


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("GATEWAY_QUEUE_WORKERS", "abc", "GATEWAY_QUEUE_WORKERS must be a whole number (got 'abc'); set it to "),
    ("GATEWAY_QUEUE_WORKERS", "0", "GATEWAY_QUEUE_WORKERS must be at least 1 (got '0'); set it to "),
    ("MAIL_PORT", "70000", "MAIL_PORT must be at most 65535 (got '70000'); set it to a port number"),
    ("MAIL_USE_TLS", "maybe", "MAIL_USE_TLS must be true or false (got 'maybe'); set it to true or false"),
    ("MAIL_TIMEOUT", "ten", "MAIL_TIMEOUT must be a number (got 'ten'); set it to a number of seconds"),
    ("MAIL_TIMEOUT", "0", "MAIL_TIMEOUT must be more than 0 (got '0'); set it to"),
    ("GATEWAY_ENV", "staging", "GATEWAY_ENV must be one of 'development', 'testing' or 'production' "
                               "(got 'staging'); set it to"),
])
def test_invalid_values_are_explained_in_the_gateways_words(monkeypatch, variable, value, says) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert str(caught.value).startswith(says) and "Input should" not in str(caught.value)
    assert caught.value.variable == variable


def test_a_secret_of_the_wrong_type_is_explained_without_its_value() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(app_config={"GATEWAY_API_KEYS": 12345.6789, "MAIL_PASSWORD": 98765.4321})
    message = str(caught.value)
    assert "app.config['GATEWAY_API_KEYS'] must be text, not a number" in message
    assert "app.config['MAIL_PASSWORD'] must be text, not a number" in message
    assert "12345" not in message and "98765" not in message


def test_a_secret_too_short_is_counted_in_characters_and_a_list_in_items() -> None:
    from pydantic import BaseModel, Field, SecretStr, ValidationError

    from mail_gateway.settings.wording import must_be

    class Backend(BaseModel):  # as a backend's own settings may declare them
        token: SecretStr = Field(min_length=8)
        regions: list[str] = Field(min_length=2)

    with pytest.raises(ValidationError) as caught:
        Backend(token="abc", regions=["eu"])
    token, regions = caught.value.errors()
    assert must_be(token) == "must be at least 8 characters long"
    assert must_be(regions) == "must hold at least 2 items"
