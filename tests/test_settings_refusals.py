"""Settings that stop start-up with one message naming the setting and the fix: never a secret shown in it (a
password in a URL, an API key or SMTP password in GATEWAY_ALLOWED_SENDERS, a DKIM key given as its path), and
never a setting the SMTP backend would drop without a word (a password without a user name, a TLS file without
TLS)."""

from __future__ import annotations

import base64
import binascii

import pytest
from click.testing import CliRunner

from mail_gateway.cli import main
from mail_gateway.errors import ConfigurationError
from mail_gateway.settings import load_settings

MARKER = "SECRETMARKER123"
WEBHOOKS = {"GATEWAY_DELIVERY": "queued", "GATEWAY_WEBHOOK_SECRET": "whsec_" + base64.b64encode(bytes(24)).decode()}


def refusal(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> ConfigurationError:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    return caught.value


# A full-width @ (U+FF20) or : (U+FF1A) reads as '@' or ':' once NFKC-normalized, and urllib's error for it quoted
# the whole authority: "MAIL_URL is invalid (netloc 'user:SECRETMARKER123\uff20x@127.0.0.1:587' contains invalid
# characters under NFKC normalization)".
@pytest.mark.parametrize(("variable", "value", "more"), [
    ("MAIL_URL", f"smtp://ops:{MARKER}\uff20x@127.0.0.1:587", {}),
    ("MAIL_URL", f"smtps://ops:{MARKER}\uff1ax@mx.example.com", {}),
    ("MAIL_URL", f"failover(smtp://a.example.com smtp://ops:{MARKER}\uff20x@b.example.com:587)", {}),
    ("GATEWAY_WEBHOOK_URL", f"https://hook:{MARKER}\uff20x@hooks.example.com/in", WEBHOOKS),
    ("GATEWAY_INBOUND_ROUTES", f"in@example.com=https://hook:{MARKER}\uff20x@hooks.example.com/in", WEBHOOKS),
    ("GATEWAY_PUBLIC_URL", f"https://ops:{MARKER}\uff20x@mail.example.com", {}),
    ("GATEWAY_OUTBOX_RELEASE_URL", f"smtp://ops:{MARKER}\uff1ax@relay.example.com:25", {}),
    ("GATEWAY_STORE_URL", f"postgresql://ops:{MARKER}\uff20x@db.example.com/mail", {}),
])
def test_a_url_whose_login_nfkc_turns_into_a_delimiter_is_refused_showing_no_part_of_it(monkeypatch, variable,
                                                                                      value, more) -> None:
    refused = refusal(monkeypatch, {**more, variable: value})
    message = str(refused)
    for part in (MARKER, "\uff20", "\uff1a", "ops:", "hook:"):
        assert part not in message and part not in repr(refused), message
    assert refused.variable == variable and message.startswith(f"{variable} is invalid"), message
    assert "cannot be read as a URL" in message and "percent-encode" in message, message


@pytest.mark.parametrize("entry", [
    f"key:billing=k-{MARKER}",  # the API key where the address belongs
    f"user:cron=pw-{MARKER}",  # the SMTP user's password there
    f"k-{MARKER}",  # a bare key pasted as an entry
    f"key:billing={MARKER}@\u2603.example",  # no IDNA 2008 form: idna's error quoted the domain
])
def test_an_entry_of_allowed_senders_that_is_no_address_is_named_by_its_place_never_shown(monkeypatch,
                                                                                          entry) -> None:
    refused = refusal(monkeypatch, {"GATEWAY_API_KEYS": f"billing:k-{MARKER}",
                                    "GATEWAY_SMTP_USERS": f"cron:pw-{MARKER}",
                                    "GATEWAY_ALLOWED_SENDERS": f"@example.com, {entry}"})
    message = str(refused)
    assert refused.variable == "GATEWAY_ALLOWED_SENDERS" and "entry 2 gives" in message, message
    assert "set it to the addresses and @domains" in message and MARKER not in message


def _dkim_check_output(monkeypatch: pytest.MonkeyPatch, key: str) -> str:
    monkeypatch.setenv("GATEWAY_DKIM_KEYS", f"example.com:s1:{key}")
    done = CliRunner().invoke(main, ["check"])
    assert done.exit_code == 1 and "GATEWAY_DKIM_KEYS" in done.output, done.output
    assert "s1._domainkey.example.com" in done.output and "mail-gateway dkim keygen" in done.output, done.output
    return done.output


SEED = MARKER.encode() + bytes.fromhex("fbff") + b"x" * 15  # an Ed25519 seed of 32 bytes, '+' '/' in base64


@pytest.mark.parametrize("pasted", [
    base64.urlsafe_b64encode(SEED).decode().rstrip("="),  # U0VDUkVUTUFSS0VSMTIz-_94...
    base64.b64encode(SEED).decode().rstrip("="),  # U0VDUkVUTUFSS0VSMTIz+/94...: holds a '/', as a path does
    binascii.hexlify(SEED).decode(),
], ids=["urlsafe-unpadded", "standard-unpadded", "hex"])
def test_a_dkim_key_not_known_for_one_is_not_shown_as_the_path_that_cannot_be_read(monkeypatch, pasted) -> None:
    # Taken for a path, it was printed as one: "the key of s1._domainkey.example.com (<the key>) cannot be read".
    output = _dkim_check_output(monkeypatch, pasted)
    assert pasted[:20] not in output and pasted[-20:] not in output, output
    assert "cannot be read" in output and "env:NAME" in output


def test_a_dkim_key_file_that_looks_like_a_path_is_still_named(monkeypatch, tmp_path) -> None:
    path = tmp_path / "keys" / "example.com.s1.key"
    assert str(path) in _dkim_check_output(monkeypatch, str(path))


@pytest.mark.parametrize(("env", "says"), [
    ({"MAIL_SERVER": "mx.example.com", "MAIL_PASSWORD": f"pw-{MARKER}"}, "MAIL_PASSWORD is set without MAIL_USERNAME"),
    ({"MAIL_SERVER": "mx.example.com", "MAIL_USERNAME": "", "MAIL_PASSWORD": f"pw-{MARKER}"}, "MAIL_USERNAME too"),
    ({"MAIL_URL": f"smtp://:pw-{MARKER}@mx.example.com:587"}, "MAIL_URL is invalid (it gives a password without"),
    ({"MAIL_URL": f"smtps://:pw-{MARKER}@mx.example.com"}, "smtps://user:password@host"),
    ({"MAIL_URL": f"failover(smtp://a.example.com smtp://:pw-{MARKER}@b.example.com)"}, "password without a user"),
])
def test_a_password_without_a_user_name_is_refused_not_dropped(monkeypatch, env, says) -> None:
    # The backend logs in only with a user name: the password was dropped and mail went out without AUTH.
    message = str(refusal(monkeypatch, env))
    assert says in message and ("remove the password" in message or "unset MAIL_PASSWORD" in message), message
    assert MARKER not in message and "pw-" not in message


@pytest.mark.parametrize(("env", "says"), [
    ({"MAIL_SERVER": "mx.example.com", "MAIL_SSL_CAFILE": "ca.pem"}, "MAIL_SSL_CAFILE is set but"),
    ({"MAIL_SERVER": "mx.example.com", "MAIL_PORT": "587", "MAIL_SSL_CERTFILE": "client.pem"}, "MAIL_SSL_CERTFILE"),
    ({"MAIL_SERVER": "mx.example.com", "MAIL_SSL_CERTFILE": "c.pem", "MAIL_SSL_KEYFILE": "k.pem"}, "MAIL_USE_SSL=true"),
    ({"MAIL_URL": "smtp://mx.example.com:25", "MAIL_SSL_CAFILE": "ca.pem"}, "smtps:// or STARTTLS"),
    ({"MAIL_URL": "smtp://mx.example.com:587?tls=none", "MAIL_SSL_CAFILE": "ca.pem"}, "in MAIL_URL"),
])
def test_a_tls_file_without_tls_is_refused_rather_than_mail_sent_in_plain_text(monkeypatch, env, says) -> None:
    refused = refusal(monkeypatch, env)
    assert says in str(refused) and "plain text" in str(refused) and "or unset MAIL_SSL_" in str(refused), refused


@pytest.mark.parametrize("env", [
    {"MAIL_SERVER": "mx.example.com", "MAIL_USE_TLS": "true", "MAIL_SSL_CAFILE": "ca.pem"},
    {"MAIL_SERVER": "mx.example.com", "MAIL_USE_SSL": "true", "MAIL_SSL_CERTFILE": "c.pem",
     "MAIL_SSL_KEYFILE": "k.pem"},
    {"MAIL_URL": "smtp://mx.example.com:587", "MAIL_SSL_CAFILE": "ca.pem"},
    {"MAIL_URL": "failover(smtp://a.example.com smtps://b.example.com)", "MAIL_SSL_CAFILE": "ca.pem"},
    {"MAIL_URL": "smtps://user:pw@mx.example.com", "MAIL_PASSWORD": "overridden"},
    {"MAIL_URL": "smtp://user:@mx.example.com"},  # a user name with an empty password logs in with it
    # Other backends read no SMTP setting; the outbox releases over STARTTLS with the TLS files.
    {"MAIL_BACKEND": "console", "MAIL_PASSWORD": "pw", "MAIL_SSL_CAFILE": "ca.pem"},
    {"MAIL_SERVER": "mx.example.com", "MAIL_SSL_CAFILE": "ca.pem",
     "GATEWAY_OUTBOX_RELEASE_URL": "smtp+starttls://relay.example.com:587"},
])
def test_settings_the_smtp_backend_honours_still_start(monkeypatch, env) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    load_settings(_env_file=None)


@pytest.mark.parametrize(("variable", "value"), [
    ("GATEWAY_QUEUE_WORKERS", "8"), ("GATEWAY_QUEUE_BACKOFF_MIN", "1"), ("GATEWAY_QUEUE_BACKOFF_MAX", "600"),
    ("GATEWAY_QUEUE_LIFETIME", "3600"), ("GATEWAY_QUEUE_MAX_SCHEDULE", "60"), ("GATEWAY_QUEUE_POLL_INTERVAL", "0.5"),
    ("GATEWAY_QUEUE_NOTIFY", "false"),
])
def test_a_queue_setting_in_direct_delivery_is_refused_not_ignored(monkeypatch, variable, value) -> None:
    # Only the queue's workers read them: in direct delivery they were taken and did nothing.
    refused = refusal(monkeypatch, {"GATEWAY_DELIVERY": "direct", variable: value})
    assert variable in str(refused) and "GATEWAY_DELIVERY=queued" in str(refused), str(refused)
    monkeypatch.setenv("GATEWAY_DELIVERY", "queued")
    assert getattr(load_settings(_env_file=None), variable.lower()) is not None


@pytest.mark.parametrize("variable", ["GATEWAY_WEBHOOK_BACKOFF_MIN", "GATEWAY_WEBHOOK_TIMEOUT"])
def test_a_webhook_setting_without_webhooks_is_refused_not_ignored(monkeypatch, variable) -> None:
    refused = refusal(monkeypatch, {"GATEWAY_DELIVERY": "queued", variable: "5"})
    assert variable in str(refused) and "GATEWAY_WEBHOOK_URL" in str(refused), str(refused)
    for name, value in {**WEBHOOKS, "GATEWAY_WEBHOOK_URL": "https://hooks.example.com/in"}.items():
        monkeypatch.setenv(name, value)
    assert getattr(load_settings(_env_file=None), variable.lower()) == 5
