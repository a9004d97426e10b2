"""Backends are registered: a third-party package declares its name, its MAIL_URL scheme and its own settings,
and is chosen by environment variables alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import thirdparty_backend
from thirdparty_backend import BEACON

from mail_gateway.app import create_app
from mail_gateway.errors import ConfigurationError
from mail_gateway.settings import load_settings
from mail_gateway.settings.registration import register_backend, unregister_backend

TOKEN = "acme-token-that-stays-secret"
MESSAGE = {"from": "app@example.com", "to": ["ann@example.org"], "subject": "Hello", "text": "Hi Ann"}


@pytest.fixture
def acme_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The acme backend installed as a package installs it: a distribution whose entry point names it."""
    site = tmp_path / "site"
    info = site / "acme_mail-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-mail\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[mail_gateway.backends]\nacme = thirdparty_backend:ACME\n")
    monkeypatch.syspath_prepend(str(site))
    thirdparty_backend.built.clear()
    yield
    thirdparty_backend.built.clear()


def test_an_installed_backend_is_chosen_by_mail_url_and_gets_its_own_settings(acme_installed, monkeypatch) -> None:
    monkeypatch.setenv("MAIL_URL", "acme://eu")
    monkeypatch.setenv("ACME_TOKEN", TOKEN)
    app = create_app(load_settings(_env_file=None))
    answer = app.test_client().post("/v1/messages", json=MESSAGE)
    assert answer.status_code == 202, answer.get_json()
    [backend] = thirdparty_backend.built
    assert isinstance(backend.settings, thirdparty_backend.AcmeSettings)
    assert backend.acme.region == "eu" and backend.acme.token.get_secret_value() == TOKEN
    [message] = backend.received
    assert list(message.recipients) == ["ann@example.org"] and b"Hi Ann" in message.data


def test_a_secret_the_url_gives_is_never_shown(acme_installed, monkeypatch) -> None:
    # The URL's values were kept as given: hidden from the settings' repr, but whole in model_dump and its JSON.
    monkeypatch.setenv("MAIL_URL", f"acme://{TOKEN}@eu")
    settings = load_settings(_env_file=None)
    shown = [repr(settings), str(settings.model_dump()), settings.model_dump_json(), repr(settings.mail_url)]
    assert all(TOKEN not in text for text in shown)
    app = create_app(settings)
    assert app.test_client().post("/v1/messages", json=MESSAGE).status_code == 202
    [backend] = thirdparty_backend.built
    assert backend.acme.token.get_secret_value() == TOKEN and backend.acme.region == "eu"


def test_an_installed_backend_is_chosen_by_name(acme_installed, monkeypatch) -> None:
    monkeypatch.setenv("MAIL_BACKEND", "acme")
    monkeypatch.setenv("ACME_TOKEN", TOKEN)
    monkeypatch.setenv("ACME_REGION", "eu")
    app = create_app(load_settings(_env_file=None))
    assert app.test_client().post("/v1/messages", json=MESSAGE).status_code == 202
    [backend] = thirdparty_backend.built
    assert backend.acme.region == "eu" and len(backend.received) == 1


def test_a_missing_backend_setting_stops_start_up_naming_it(acme_installed, monkeypatch) -> None:
    monkeypatch.setenv("MAIL_URL", "acme://eu")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    assert caught.value.variable == "ACME_TOKEN"
    assert str(caught.value) == "ACME_TOKEN is required; set it to the API token Acme issued (8 characters or more)"
    assert not thirdparty_backend.built


def test_an_invalid_backend_secret_is_named_and_never_shown(acme_installed, monkeypatch) -> None:
    monkeypatch.setenv("MAIL_URL", "acme://eu")
    monkeypatch.setenv("ACME_TOKEN", "short")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    assert caught.value.variable == "ACME_TOKEN"
    assert "\n" not in str(caught.value) and "short" not in str(caught.value)


def test_a_bad_value_from_the_url_names_mail_url(acme_installed, monkeypatch) -> None:
    monkeypatch.setenv("MAIL_URL", "acme://mars")
    monkeypatch.setenv("ACME_TOKEN", TOKEN)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    assert caught.value.variable == "MAIL_URL"
    assert "mars" not in str(caught.value) and TOKEN not in str(caught.value)


def test_a_url_whose_port_is_no_number_is_refused_before_the_backend_reads_it(acme_installed, monkeypatch) -> None:
    # An unencoded '/' in a password ends the authority there: the password's first part is read as the port, and
    # urllib's ValueError for it ("Port could not be cast to integer value as 'pa55'"), raised where the backend
    # read url.port, reached the start-up message.
    monkeypatch.setenv("MAIL_URL", "acme://user:pa55/w0rd@eu")
    monkeypatch.setenv("ACME_TOKEN", TOKEN)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    assert caught.value.variable == "MAIL_URL" and "%2F" in str(caught.value)
    assert "pa55" not in str(caught.value) and "w0rd" not in str(caught.value), caught.value


def test_an_unknown_scheme_lists_the_installed_ones(acme_installed, monkeypatch) -> None:
    monkeypatch.setenv("MAIL_URL", "nosuch://eu")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    assert caught.value.variable == "MAIL_URL" and "acme" in str(caught.value)


def test_without_the_package_its_scheme_is_unknown(monkeypatch) -> None:
    monkeypatch.setenv("MAIL_URL", "acme://eu")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    assert caught.value.variable == "MAIL_URL" and "unknown scheme" in str(caught.value)


def test_a_registered_backends_gateway_prefixed_variables_are_not_refused(monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_BEACON_CHANNEL", "alerts")
    with pytest.raises(ConfigurationError, match="GATEWAY_BEACON_CHANNEL is not a setting"):
        load_settings(_env_file=None)
    register_backend(BEACON)
    try:
        monkeypatch.setenv("MAIL_BACKEND", "beacon")
        settings = load_settings(_env_file=None)
        with pytest.raises(ConfigurationError, match="already registered"):
            register_backend(BEACON)
    finally:
        unregister_backend("beacon")
    assert settings.backend_name == "beacon"
