"""MAIL_URL: one string for the backend and its upstreams, overriding the separate variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from mail_gateway.backends.registry import create_backend
from mail_gateway.errors import ConfigurationError
from mail_gateway.settings import load_settings
from mail_gateway.settings.mail_url import Upstream, parse_mail_url


@pytest.mark.parametrize(
    ("url", "upstream"),
    [
        ("smtp://user:pass@mx.example.com:587?tls=starttls", Upstream("mx.example.com", 587, "starttls", "user")),
        ("smtp://mx.example.com:587", Upstream("mx.example.com", 587, "starttls")),
        ("smtp://mx.example.com:587?tls=none", Upstream("mx.example.com", 587, "none")),
        ("smtp://mx.example.com", Upstream("mx.example.com", 25, "none")),
        ("smtps://a%40b.org:p%2Fw@mx.example.com", Upstream("mx.example.com", 465, "ssl", "a@b.org")),
    ],
)
def test_smtp_urls(url: str, upstream: Upstream) -> None:
    parsed = parse_mail_url(url)
    assert parsed.backend == "smtp" and parsed.strategy == "single"
    [got] = parsed.upstreams
    assert (got.host, got.port, got.security, got.username) == (upstream.host, upstream.port, upstream.security,
                                                                upstream.username)


def test_the_password_is_decoded_and_kept_secret() -> None:
    [upstream] = parse_mail_url("smtps://user:p%2Fw%40rd@mx.example.com").upstreams
    assert isinstance(upstream.password, SecretStr) and upstream.password.get_secret_value() == "p/w@rd"
    assert "p/w@rd" not in repr(upstream) and "p%2Fw" not in repr(upstream)


@pytest.mark.parametrize(
    ("url", "backend", "path"),
    [("console://", "console", None), ("memory://", "memory", None),
     ("file:///var/spool/gateway", "file", Path("/var/spool/gateway"))],
)
def test_other_backends(url: str, backend: str, path: Path | None) -> None:
    parsed = parse_mail_url(url)
    assert (parsed.backend, parsed.file_path, parsed.upstreams) == (backend, path, ())


@pytest.mark.parametrize("strategy", ["failover", "roundrobin"])
def test_several_upstreams(strategy: str) -> None:
    parsed = parse_mail_url(f"{strategy}(smtp://a.example.com:587 smtps://u:pw@b.example.com)")
    assert parsed.strategy == strategy
    assert [(u.name, u.security) for u in parsed.upstreams] == [("a.example.com:587", "starttls"),
                                                                ("b.example.com:465", "ssl")]


def test_mail_url_overrides_the_separate_variables(monkeypatch) -> None:
    monkeypatch.setenv("MAIL_BACKEND", "console")
    monkeypatch.setenv("MAIL_SERVER", "old.example.com")
    monkeypatch.setenv("MAIL_USERNAME", "old-user")
    monkeypatch.setenv("MAIL_URL", "smtps://new-user:n3w-secret@new.example.com")
    settings = load_settings(_env_file=None)
    strategy, [upstream] = settings.smtp_upstreams()
    assert (settings.backend_name, strategy, upstream.host, upstream.port) == ("smtp", "single", "new.example.com", 465)
    assert upstream.security == "ssl" and upstream.username == "new-user"
    assert upstream.password.get_secret_value() == "n3w-secret"
    assert "n3w-secret" not in repr(settings) and "n3w-secret" not in str(settings.model_dump())


def test_a_file_url_selects_the_file_backend(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("MAIL_URL", (tmp_path / "spool").as_uri())
    backend = create_backend(load_settings(_env_file=None))
    assert backend.name == "file" and (tmp_path / "spool").is_dir()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("smtp://user:hunter2@mx.example.com:99999", "port"),
        ("smtp://user:hunter2@:25", "no host name"),
        ("gopher://user:hunter2@mx.example.com", "unknown scheme"),
        ("smtp://user:hunter2@mx.example.com?tls=maybe", "tls="),
        ("smtp://user:hunter2@mx.example.com?foo=1", "unknown URL parameter"),
        ("failover()", "no upstreams"),
        ("failover(smtp://a console://)", "only list smtp"),
        ("user:hunter2 at mx.example.com", "not a URL"),
    ],
)
def test_an_invalid_url_fails_at_start_up_naming_mail_url_never_the_password(monkeypatch, url, reason) -> None:
    monkeypatch.setenv("MAIL_URL", url)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    assert caught.value.variable == "MAIL_URL"
    assert str(caught.value).startswith("MAIL_URL is invalid") and reason in str(caught.value)
    assert "hunter2" not in str(caught.value) and "hunter2" not in repr(caught.value)


def test_a_failover_url_builds_one_pool_per_upstream(monkeypatch) -> None:
    monkeypatch.setenv("MAIL_URL", "failover(smtp://a.example.com:2525 smtp://b.example.com:2525)")
    backend = create_backend(load_settings(_env_file=None))
    assert [m.upstream.name for m in backend.upstreams.members] == ["a.example.com:2525", "b.example.com:2525"]
    assert backend.upstreams.strategy == "failover"
    backend.close()


# A password with an unencoded '/', '?' or '#' ends the authority early: "1234" became the port and "user" the
# host, and both showed up wherever the upstream is named. Each such URL is refused, naming the part.
@pytest.mark.parametrize(
    ("url", "part"),
    [
        ("smtp://user:1234/Sup3rS3cret@mx.example.com", "path"),
        ("smtps://user:1234/Sup3rS3cret@mx.example.com:465", "path"),
        ("smtp://user:1234#Sup3rS3cret@mx.example.com", "fragment"),
        ("smtp://user:1234?Sup3rS3cret@mx.example.com", "unknown URL parameter"),
        ("smtp://user:1234?tls=none&Sup3rS3cret@mx.example.com", "unknown URL parameter"),
        ("failover(smtp://a.example.com smtp://user:1234/Sup3rS3cret@b.example.com)", "path"),
        ("file:///var/spool/gateway#Sup3rS3cret", "fragment"),
        ("file:///var/spool/gateway?Sup3rS3cret", "query"),
        ("memory://Sup3rS3cret", "nothing after"),
    ],
)
def test_a_part_the_scheme_does_not_define_is_refused_and_no_part_of_the_password_shown(monkeypatch, url,
                                                                                         part) -> None:
    monkeypatch.setenv("MAIL_URL", url)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert caught.value.variable == "MAIL_URL" and part in message
    assert "percent-encode" in message or url.startswith("memory")
    for fragment in ("1234", "Sup3r", "S3cret", "mx.example.com"):
        assert fragment not in message and fragment not in repr(caught.value)


def test_a_percent_encoded_password_with_reserved_characters_still_works() -> None:
    [upstream] = parse_mail_url("smtp://user:1234%2FSup3r%3FS3%23cret@mx.example.com:587").upstreams
    assert (upstream.host, upstream.port, upstream.username) == ("mx.example.com", 587, "user")
    assert upstream.password.get_secret_value() == "1234/Sup3r?S3#cret"
