"""``mail-gateway send`` with Cc, Bcc, an HTML file and attachments, read back from the file backend; with queued
delivery it stores the message for a worker, which then delivers it to a real upstream."""

from __future__ import annotations

import email
import email.policy
import json
import re
from pathlib import Path

import pytest
from api_helpers import deeply_nested
from click.testing import CliRunner
from crash_support import queue_env, start_worker
from ingress_support import wait_until

from mail_gateway.cli import main
from mail_gateway.mail.reader import MessageReader


@pytest.fixture
def outbox(monkeypatch, tmp_path) -> Path:
    directory = tmp_path / "outbox"
    monkeypatch.setenv("MAIL_BACKEND", "file")
    monkeypatch.setenv("MAIL_FILE_PATH", str(directory))
    return directory


def sent(outbox: Path) -> list[MessageReader]:
    return [MessageReader(p.read_bytes()) for p in sorted(outbox.glob("*.eml"))]


def test_send_with_html_file_and_attachments(outbox, tmp_path) -> None:
    (tmp_path / "body.html").write_text("<h1>Grüße</h1>", encoding="utf-8")
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4 fake")
    (tmp_path / "notes.txt").write_text("line one\n", encoding="utf-8")
    result = CliRunner().invoke(main, [
        "send", "--from", "app@example.com", "--to", "friend@example.com", "--cc", "c@example.com",
        "--bcc", "hidden@example.com", "--subject", "Files", "--text", "See attached",
        "--html-file", str(tmp_path / "body.html"),
        "--attach", str(tmp_path / "report.pdf"), "--attach", str(tmp_path / "notes.txt")])
    assert result.exit_code == 0, result.output
    for address in ("friend@example.com", "c@example.com", "hidden@example.com"):
        assert f"accepted {address}" in result.output
    [message] = sent(outbox)
    assert message.subject == "Files" and message.cc == ["c@example.com"]
    assert message.text.strip() == "See attached" and message.html.strip() == "<h1>Grüße</h1>"
    # Every attachment travels base64-encoded, a text file's line ends included: the bytes arrive unchanged.
    assert [(a.filename, a.content_type, a.content) for a in message.attachments] == [
        ("report.pdf", "application/pdf", b"%PDF-1.4 fake"), ("notes.txt", "text/plain", b"line one\n")]
    assert "hidden@example.com" not in message.data.decode()


def test_an_attachment_refused_as_a_whole_names_the_attach_option(outbox, tmp_path) -> None:
    (tmp_path / "deep.eml").write_bytes(deeply_nested(200))  # nested past the limit: the attachments are refused
    result = CliRunner().invoke(main, ["send", "--from", "app@example.com", "--to", "friend@example.com",
                                       "--text", "forwarded", "--attach", str(tmp_path / "deep.eml")])
    assert result.exit_code == 2 and "--attach: " in result.output and "nest MIME parts" in result.output, \
        result.output
    assert "--attachments" not in result.output and not sent(outbox)


@pytest.mark.parametrize(("options", "said"), [
    (["--text", "t", "--header", "Bcc: hidden@example.com"], "--header: header 'Bcc' is set by the gateway"),
    (["--text", "t", "--header", "X-Note: one\ntwo"], "--header: must not contain U+000A"),
    (["--text", "t", "--var", "name=Ann"], "--var: variables are read by a template; name the template too"),
])
def test_a_refused_header_or_variable_names_the_option_given(outbox, options, said) -> None:
    result = CliRunner().invoke(main, ["send", "--from", "app@example.com", "--to", "friend@example.com", *options])
    assert result.exit_code == 2 and said in result.output, result.output
    assert "--headers" not in result.output and not sent(outbox)


def test_html_file_alone_is_the_body(outbox, tmp_path) -> None:
    (tmp_path / "body.html").write_text("<p>only html</p>", encoding="utf-8")
    result = CliRunner().invoke(main, ["send", "--from", "app@example.com", "--to", "friend@example.com",
                                       "--html-file", str(tmp_path / "body.html")])
    assert result.exit_code == 0, result.output
    [message] = sent(outbox)
    parsed = email.message_from_bytes(message.data, policy=email.policy.default)
    assert parsed.get_content_type() == "text/html" and message.html.strip() == "<p>only html</p>"


def test_html_and_html_file_together_is_a_usage_error(outbox, tmp_path) -> None:
    (tmp_path / "body.html").write_text("<p>x</p>")
    result = CliRunner().invoke(main, ["send", "--to", "friend@example.com", "--html", "<p>y</p>",
                                       "--html-file", str(tmp_path / "body.html")])
    assert result.exit_code == 2 and "--html-file" in result.output
    assert sent(outbox) == []


def test_a_missing_attachment_is_a_usage_error_and_nothing_is_sent(outbox, tmp_path) -> None:
    result = CliRunner().invoke(main, ["send", "--from", "app@example.com", "--to", "friend@example.com",
                                       "--text", "x", "--attach", str(tmp_path / "missing.pdf")])
    assert result.exit_code == 2 and "--attach" in result.output
    assert not outbox.exists() or sent(outbox) == []


def test_send_with_queued_delivery_stores_the_message_for_a_worker(smtp_server_factory, tmp_path, monkeypatch) -> None:
    upstream = smtp_server_factory()
    env = queue_env(tmp_path, upstream.port)
    for name, value in env.items():
        if name.startswith(("MAIL_", "GATEWAY_")):
            monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["send", "--from", "app@example.com", "--to", "friend@example.com",
                                       "--cc", "c@example.com", "--subject", "Later", "--text", "queued"])
    assert result.exit_code == 0, result.output
    # Stored, not delivered by the command itself: the upstream has seen nothing when it returns.
    assert upstream.messages == []
    found = re.search(r"^ID: (\S+)$", result.output, re.MULTILINE)
    assert found, result.output
    assert "queued   friend@example.com" in result.output and "queued   c@example.com" in result.output
    assert result.stdout == "" and found.group(0) in result.stderr  # as docs/cli.md says: on standard error
    shown = CliRunner().invoke(main, ["queue", "show", found.group(1)])
    assert shown.exit_code == 0, shown.output
    stored = json.loads(shown.output)
    assert stored["status"] == "queued" and stored["via"] == "cli"
    assert sorted(r["email"] for r in stored["recipients"]) == ["c@example.com", "friend@example.com"]
    worker = start_worker(env, tmp_path)
    try:
        wait_until(lambda: len(upstream.messages) == 1, "the worker delivered the stored message")
        wait_until(lambda: json.loads(CliRunner().invoke(main, ["queue", "show", found.group(1)]).output)["status"]
                   == "delivered", "the store says delivered")
    finally:
        worker.stop()
    [message] = upstream.messages
    assert message.mail_from == "app@example.com" and b"Subject: Later" in message.data
