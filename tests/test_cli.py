"""The mail-gateway command through click's runner, and as a real process for start-up and serving."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from process_support import stop_and_read
from smtp_server import free_port

from mail_gateway.cli import main

BIN = Path(sys.executable).parent / "mail-gateway"


def test_send_prints_each_recipient(monkeypatch, smtp_server) -> None:
    for name, value in smtp_server.settings().items():
        monkeypatch.setenv(name.upper(), str(value))
    result = CliRunner().invoke(main, ["send", "--from", "app@example.com", "--to", "friend@example.com",
                                       "--to", "other@example.com", "--subject", "Hi", "--text", "Body"])
    assert result.exit_code == 0, result.output
    assert "accepted friend@example.com" in result.output and "accepted other@example.com" in result.output
    assert [m.rcpt_tos for m in smtp_server.messages] == [["friend@example.com", "other@example.com"]]


def test_send_that_is_not_accepted_exits_non_zero(monkeypatch) -> None:
    monkeypatch.setenv("MAIL_BACKEND", "smtp")
    monkeypatch.setenv("MAIL_SERVER", "127.0.0.1")
    monkeypatch.setenv("MAIL_PORT", str(free_port()))
    result = CliRunner().invoke(main, ["send", "--from", "app@example.com", "--to", "friend@example.com",
                                       "--text", "Body"])
    assert result.exit_code == 1
    assert "not sent" in result.output and "could not connect" in result.output


def test_send_with_a_bad_address_is_a_usage_error(monkeypatch) -> None:
    result = CliRunner().invoke(main, ["send", "--from", "app@example.com", "--to", "nobody", "--text", "x"])
    assert result.exit_code == 2
    assert "--to" in result.output


def test_a_configuration_error_is_one_line_without_a_traceback(monkeypatch) -> None:
    monkeypatch.setenv("MAIL_PORT", "abc")
    result = CliRunner().invoke(main, ["send", "--to", "friend@example.com", "--text", "x"])
    assert result.exit_code == 1
    assert "MAIL_PORT" in result.output and "Traceback" not in result.output


def test_check_says_a_store_failure_once(monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_DELIVERY", "queued")
    monkeypatch.setenv("GATEWAY_STORE_URL", f"postgresql://gateway:pw-1234@127.0.0.1:{free_port()}/mail")
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 1
    assert result.output.count("store postgresql://gateway:***@127.0.0.1") == 1, result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: store postgresql://")
    assert "pw-1234" not in result.output


@pytest.mark.parametrize(("name", "value"), [("MAIL_DEFAULT_SENDER", "nonsense"), ("GATEWAY_TEMPLATES_DIR", "nonsense"),
                                           ("GATEWAY_CHAOS", "nonsense")])
def test_check_refuses_what_serve_would_refuse(monkeypatch, tmp_path, name, value) -> None:
    # check said "configuration ok" for each, and serve then refused to start.
    monkeypatch.chdir(tmp_path)
    for variable, given in {"MAIL_BACKEND": "memory", "GATEWAY_ENV": "testing", name: value}.items():
        monkeypatch.setenv(variable, given)
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 1 and "configuration ok" not in result.output
    assert result.output.startswith(f"Error: configuration error: {name}") and "Traceback" not in result.output


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("mail-gateway, version ")


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "GATEWAY_"))}
    return {**env, **values}


def test_the_commands_understand_flask_mailmans_backend_names_as_an_app_does(tmp_path) -> None:
    # The names are the Flask extension's to know; a command (a process of its own, that loads no app) knows them.
    for name in ("locmem", "flask_mailman.backends.locmem.EmailBackend"):
        done = subprocess.run([str(BIN), "check"], env=_env(MAIL_BACKEND=name), cwd=tmp_path, capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert "configuration ok: backend memory" in done.stdout


def test_serve_refuses_to_start_when_misconfigured(tmp_path) -> None:
    cases = [({"MAIL_USE_TLS": "true", "MAIL_USE_SSL": "true"}, "MAIL_USE_SSL"),
             ({"GATEWAY_ENV": "production", "GATEWAY_API_KEYS": "k1"}, "MAIL_SERVER"),
             ({"GATEWAY_ENV": "production", "MAIL_SERVER": "smtp.example.com"}, "GATEWAY_API_KEYS"),
             ({"MAIL_BACKEND": "nowhere.Backend"}, "MAIL_BACKEND"),
             ({"MAIL_BACKEND": "file", "MAIL_FILE_PATH": "/proc/x"}, "MAIL_FILE_PATH"),
             ({"GATEWAY_PORT": "http"}, "GATEWAY_PORT")]
    for bad, variable in cases:
        done = subprocess.run([str(BIN), "serve"], env=_env(**bad), cwd=tmp_path, capture_output=True, text=True,
                              timeout=30)
        assert done.returncode != 0
        assert "Traceback" not in done.stderr
        assert variable in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_serve_runs_a_production_server_and_prints_mail_on_the_console(tmp_path) -> None:
    port = free_port()
    process = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=_env(PYTHONUNBUFFERED="1"),
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    assert response.status == 200
                    assert response.headers["Server"] == "mail-gateway"  # waitress, not Flask's dev server
                break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/messages", method="POST", headers={"Content-Type": "application/json"},
            data=json.dumps({"from": "app@example.com", "to": ["friend@example.com"], "subject": "Hello",
                             "text": "This is a test email sent from Flask."}).encode())
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 202
            body = json.load(response)
    finally:
        out, err = stop_and_read(process, 10)
    assert body["backend"] == "console"
    assert "Subject: Hello" in out and "This is a test email sent from Flask." in out
    assert f"Message-ID: {body['message_id']}" in out
    assert "Traceback" not in err
    assert f"on http://127.0.0.1:{port}; outbox page http://127.0.0.1:{port}/outbox" in err.splitlines()[0]
