"""Settings by subject: one immutable model per subject, read under the same names as ever, and each built-in
backend built from its own subject's settings alone."""

from __future__ import annotations

import base64

import pydantic
import pytest
from flask_mailman import EmailMessage
from smtp_server import FaultHandler

from mail_gateway.backends.registry import create_backend
from mail_gateway.errors import ConfigurationError, TransientDeliveryError
from mail_gateway.queue.setup import delivery_settings
from mail_gateway.settings import GatewaySettings, load_settings
from mail_gateway.settings.registration import BUILTIN
from mail_gateway.settings.subjects import SUBJECTS


def declared(model: type[pydantic.BaseModel]) -> set[str]:
    """The fields a subject's class declares itself (the console's inherits the memory bounds it keeps by)."""
    inherited = {name for base in model.__bases__ if issubclass(base, pydantic.BaseModel)
                 for name in base.model_fields}
    return set(model.model_fields) - inherited


def test_the_subjects_share_out_every_setting_each_to_exactly_one(make_settings, tmp_path) -> None:
    settings = make_settings(mail_file_path=tmp_path)
    owners: dict[str, list[str]] = {}
    for name, model in SUBJECTS.items():
        assert type(getattr(settings, name)) is model
        for field in declared(model) & set(GatewaySettings.model_fields):
            owners.setdefault(field, []).append(name)
    assert set(owners) == set(GatewaySettings.model_fields)
    assert {field: names for field, names in owners.items() if len(names) > 1} == {}


def test_a_subject_holds_its_own_settings_and_no_other_subjects(make_settings) -> None:
    settings = make_settings(mail_server="mx.example.org", gateway_max_message_bytes=4096)
    assert settings.smtp.mail_server == "mx.example.org"
    assert not hasattr(settings.smtp, "gateway_max_message_bytes")
    assert not hasattr(settings.smtp, "gateway_smtp_port")
    assert settings.http.gateway_max_message_bytes == 4096
    assert not hasattr(settings.http, "mail_server")
    assert settings.ingress.gateway_smtp_port == 1025 and not hasattr(settings.ingress, "gateway_api_keys")


def test_environment_and_app_config_names_are_unchanged(monkeypatch) -> None:
    monkeypatch.setenv("MAIL_SERVER", "mx.example.org")
    monkeypatch.setenv("GATEWAY_MAX_MESSAGE_BYTES", "4096")
    monkeypatch.setenv("GATEWAY_WEBHOOK_TIMEOUT", "2.5")  # read with webhooks only: queued, a URL, its secret
    monkeypatch.setenv("GATEWAY_DELIVERY", "queued")
    monkeypatch.setenv("GATEWAY_WEBHOOK_URL", "https://hooks.example.com/in")
    monkeypatch.setenv("GATEWAY_WEBHOOK_SECRET", "whsec_" + base64.b64encode(bytes(24)).decode())
    settings = load_settings(_env_file=None, app_config={"MAIL_PORT": 2526, "GATEWAY_SMTP_PORT": "2527"})
    assert (settings.smtp.mail_server, settings.smtp.mail_port) == ("mx.example.org", 2526)
    assert settings.http.gateway_max_message_bytes == 4096
    assert settings.ingress.gateway_smtp_port == 2527
    assert settings.webhooks.gateway_webhook_timeout == 2.5


def test_a_subject_is_built_once_and_cannot_be_changed(make_settings) -> None:
    settings = make_settings()
    assert settings.smtp is settings.smtp
    with pytest.raises(pydantic.ValidationError):
        settings.smtp.mail_port = 2525  # type: ignore[misc]


def test_a_copy_with_other_values_builds_its_subjects_from_them(make_settings) -> None:
    settings = make_settings(mail_retry_attempts=5)
    assert settings.smtp.mail_retry_attempts == 5
    assert settings.model_copy(update={"mail_retry_attempts": 2}).smtp.mail_retry_attempts == 2
    assert settings.smtp.mail_retry_attempts == 5


def test_the_outbox_subject_signs_with_the_secret_drawn_for_the_settings(make_settings) -> None:
    settings = make_settings()
    assert settings.outbox.outbox_session_secret == settings.outbox_session_secret


@pytest.mark.parametrize(("environment", "summary", "keeps"), [("development", "summary", True),
                                                               ("testing", "raw", False)])
def test_the_console_subject_holds_its_defaults_resolved(make_settings, environment, summary, keeps) -> None:
    console = make_settings(gateway_env=environment, mail_backend="console").console
    assert (console.mail_console_format, console.mail_console_keep) == (summary, keeps)


def test_every_builtin_backend_is_built_from_its_subject_alone(make_settings, tmp_path) -> None:
    settings = make_settings(mail_file_path=tmp_path / "mail", gateway_max_message_bytes=4096,
                             gateway_smtp_max_message_bytes=8192, mail_server="127.0.0.1")
    for registration in BUILTIN:
        chosen = settings.model_copy(update={"mail_backend": registration.name})
        backend = create_backend(chosen)
        try:
            assert backend.settings is getattr(chosen, registration.subject)
            assert not isinstance(backend.settings, GatewaySettings)
            assert not hasattr(backend.settings, "gateway_api_keys")
            assert not hasattr(backend.settings, "gateway_max_message_bytes")
        finally:
            backend.close()


def test_the_file_backend_knows_the_largest_message_it_must_have_room_for(make_settings, tmp_path) -> None:
    file = make_settings(mail_backend="file", mail_file_path=tmp_path, gateway_max_message_bytes=4096,
                         gateway_smtp_max_message_bytes=8192).file
    assert (file.mail_file_path, file.largest_message_bytes, file.largest_message_setting) == (
        tmp_path, 8192, "GATEWAY_SMTP_MAX_MESSAGE_BYTES")
    with pytest.raises(ConfigurationError, match="MAIL_FILE_PATH is not set"):
        make_settings(mail_backend="memory").file  # noqa: B018


def test_a_builtin_backend_named_by_its_path_is_built_from_its_subject(make_settings) -> None:
    settings = make_settings(gateway_env="development", mail_backend="mail_gateway.backends.console.ConsoleBackend")
    backend = create_backend(settings)
    assert backend.settings == settings.console and backend.with_summary  # type: ignore[attr-defined]


def test_queued_delivery_makes_one_attempt_per_upstream_though_the_subject_was_read(
        make_settings, smtp_server_factory) -> None:
    server = smtp_server_factory(FaultHandler(data_reply="451 4.3.0 try again later"))
    settings = make_settings(gateway_delivery="queued", **server.queued_settings())
    assert settings.smtp.mail_retry_attempts == 3  # read (and kept) before the workers' settings are derived
    backend = create_backend(delivery_settings(settings))
    try:
        with pytest.raises(TransientDeliveryError):
            backend.send_messages([EmailMessage("Hi", "Body", "app@example.com", ["ann@example.org"])])
    finally:
        backend.close()
    assert server.handler.data_commands == 1


def test_the_workers_smtp_settings_hold_one_attempt_per_upstream_however_many(make_settings) -> None:
    upstreams = " ".join(f"smtp://mx{number}.example.org:25" for number in range(25))
    settings = make_settings(gateway_delivery="queued", mail_url=f"failover({upstreams})")
    assert delivery_settings(settings).smtp.mail_retry_attempts == 25


def test_a_subject_says_which_of_its_settings_were_given(make_settings) -> None:
    smtp = make_settings(mail_server="mx.example.org", gateway_max_batch=10).smtp
    assert smtp.model_fields_set == {"mail_server"}
