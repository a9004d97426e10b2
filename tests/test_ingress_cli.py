"""``mail-gateway smtpd`` and ``serve --smtp`` as real processes, and ``swaks`` as a second SMTP client."""

from __future__ import annotations

import json
import os
import shutil
import smtplib
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from api_helpers import parsed
from ingress_support import DEADLINE_SECONDS, message_bytes, smtp_ready, wait_until
from process_support import stop_and_read
from smtp_server import HOST, free_port

BIN = Path(sys.executable).parent / "mail-gateway"
SWAKS = shutil.which("swaks")
needs_swaks = pytest.mark.skipif(SWAKS is None, reason="swaks is not installed (make test installs it with apt)")



def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "GATEWAY_"))}
    return {**env, "PYTHONUNBUFFERED": "1", **values}



def _stop(process: subprocess.Popen) -> tuple[str, str]:
    return stop_and_read(process, DEADLINE_SECONDS)


def test_smtpd_prints_mail_received_over_smtp_on_the_console(tmp_path) -> None:
    port = free_port()
    process = subprocess.Popen([str(BIN), "smtpd", "--port", str(port)], env=_env(), cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: smtp_ready(port, process), "smtpd accepts connections")
        with smtplib.SMTP(HOST, port, timeout=DEADLINE_SECONDS) as client:
            client.sendmail("app@example.com", ["friend@example.com"], message_bytes(subject="From cron"))
    finally:
        out, err = _stop(process)
    assert process.returncode == 0, err  # SIGTERM is a clean stop
    assert "Subject: From cron" in out and "Message-ID: <ingress-test@example.com>" in out
    assert f"smtp://127.0.0.1:{port}" in err and "via=smtp" in err and "outcome=accepted" in err
    assert "Traceback" not in err


def test_serve_with_smtp_takes_mail_over_http_and_smtp_through_one_backend(tmp_path) -> None:
    http_port, smtp_port = free_port(), free_port()
    process = subprocess.Popen([str(BIN), "serve", "--smtp", "--port", str(http_port)],
                               env=_env(GATEWAY_SMTP_PORT=str(smtp_port)), cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: smtp_ready(smtp_port, process), "the SMTP ingress accepts connections")
        with smtplib.SMTP(HOST, smtp_port, timeout=DEADLINE_SECONDS) as client:
            client.sendmail("app@example.com", ["friend@example.com"], message_bytes(subject="Over SMTP"))
        request = urllib.request.Request(
            f"http://127.0.0.1:{http_port}/v1/messages", method="POST", headers={"Content-Type": "application/json"},
            data=json.dumps({"from": "app@example.com", "to": ["friend@example.com"], "subject": "Over HTTP",
                             "text": "Hello"}).encode())
        with urllib.request.urlopen(request, timeout=DEADLINE_SECONDS) as response:
            assert response.status == 202
    finally:
        out, err = _stop(process)
    assert "Subject: Over SMTP" in out and "Subject: Over HTTP" in out
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("command", "bad", "variable"),
    [
        (["smtpd", "--host", "0.0.0.0"], {}, "GATEWAY_SMTP_HOST"),
        (["serve", "--smtp"], {"GATEWAY_SMTP_HOST": "0.0.0.0"}, "GATEWAY_SMTP_HOST"),
        (["smtpd"], {"GATEWAY_SMTP_PORT": "smtp"}, "GATEWAY_SMTP_PORT"),
        (["smtpd"], {"GATEWAY_SMTP_USERS": "app-without-password"}, "GATEWAY_SMTP_USERS"),
        (["smtpd"], {"GATEWAY_SMTP_USERS": "app:s3cret-pw"}, "GATEWAY_SMTP_TLS_CERT"),
    ],
    ids=["open-relay", "serve-open-relay", "bad-port", "bad-users", "auth-without-tls"],
)
def test_smtpd_refuses_to_start_when_misconfigured(tmp_path, command, bad, variable) -> None:
    env = _env(**{"GATEWAY_SMTP_PORT": str(free_port()), **bad})
    done = subprocess.run([str(BIN), *command], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=DEADLINE_SECONDS)
    assert done.returncode != 0
    assert variable in done.stderr and "s3cret-pw" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr


def _swaks(port: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SWAKS, "--server", f"{HOST}:{port}", "--from", "app@example.com", "--to",
                           "friend@example.com", "--header", "Subject: via swaks", "--body", "Sent by swaks.", *args],
                          capture_output=True, text=True, timeout=DEADLINE_SECONDS * 2)


@needs_swaks
def test_swaks_delivers_through_the_ingress(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory")
    done = _swaks(ingress.port)
    assert done.returncode == 0, done.stdout + done.stderr
    [stored] = ingress.backend.messages
    message = parsed(stored)
    assert message["Subject"] == "via swaks" and "Sent by swaks." in message.get_content()
    assert stored.envelope_from == "app@example.com" and stored.recipients == ("friend@example.com",)


@needs_swaks
def test_swaks_with_starttls_and_auth(ingress_factory, tmp_path) -> None:
    import trustme

    cert = trustme.CA().issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_users="app:correct-horse",
                              gateway_smtp_tls_cert=str(tmp_path / "cert.pem"),
                              gateway_smtp_tls_key=str(tmp_path / "key.pem"))
    refused = _swaks(ingress.port, "--tls", "--auth", "PLAIN", "--auth-user", "app", "--auth-password", "wrong")
    assert refused.returncode != 0 and "535" in refused.stdout
    done = _swaks(ingress.port, "--tls", "--auth", "PLAIN", "--auth-user", "app", "--auth-password", "correct-horse")
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(ingress.backend.messages) == 1


@needs_swaks
def test_swaks_sees_451_when_the_upstream_is_down(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="smtp", mail_server=HOST, mail_port=free_port())
    done = _swaks(ingress.port)
    assert done.returncode != 0 and "<** 451" in done.stdout
