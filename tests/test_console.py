"""The console backend's readable summary, and MAIL_CONSOLE_FORMAT=raw."""

from __future__ import annotations

import base64
import io

import pytest
from flask_mailman import EmailMultiAlternatives

from mail_gateway import create_app
from mail_gateway.backends.console import SEPARATOR, SUMMARY_PREFIX, WIRE_FORMAT, ConsoleBackend
from mail_gateway.errors import ConfigurationError
from mail_gateway.settings import load_settings


def message(**kwargs) -> EmailMultiAlternatives:
    defaults = {"subject": "Grüße", "body": "Hallo Zoë,\nschöne Grüße aus Köln.", "from_email":
                "Jörg <jm@example.com>", "to": ["friend@example.com"]}
    msg = EmailMultiAlternatives(**{**defaults, **kwargs})
    msg.encoding = "utf-8"
    return msg


def printed(backend_format: str | None, make_settings, *messages) -> str:
    stream = io.StringIO()
    fields = {"gateway_env": "development", "mail_backend": "console"}
    if backend_format:
        fields["mail_console_format"] = backend_format
    ConsoleBackend(make_settings(**fields).console, stream=stream).send_messages(list(messages))
    return stream.getvalue()


def summary_of(output: str) -> list[str]:
    summary, marker, _ = output.partition(WIRE_FORMAT + "\n")
    assert marker, output
    return summary.splitlines()


def test_development_prints_a_summary_before_the_wire_format(make_settings) -> None:
    msg = message(cc=["c@example.com"], bcc=["hidden@example.com"])
    msg.attach_alternative("<p>html</p>", "text/html")
    msg.attach("report.pdf", b"%PDF" + bytes(2044), "application/pdf")
    output = printed(None, make_settings, msg)
    lines = summary_of(output)
    assert lines[:5] == ["| From:    Jörg <jm@example.com>", "| To:      friend@example.com",
                         "| Cc:      c@example.com", "| Bcc:     hidden@example.com", "| Subject: Grüße"]
    assert "| Attachments:" in lines and "|   report.pdf  application/pdf  2.0 KiB" in lines
    assert lines[-2:] == ["| Hallo Zoë,", "| schöne Grüße aus Köln."]
    wire = output.partition(WIRE_FORMAT + "\n")[2]
    assert wire.startswith("From: ") and "Content-Type: multipart/mixed" in wire and wire.endswith(SEPARATOR + "\n")


def test_every_summary_line_is_marked_so_it_cannot_pass_for_the_message(make_settings) -> None:
    body = "From: evil@example.com\nSubject: forged\n\n" + SEPARATOR + "\n" + WIRE_FORMAT
    lines = summary_of(printed("summary", make_settings, message(body=body)))
    assert all(line.startswith(SUMMARY_PREFIX.rstrip()) for line in lines)
    assert "| From: evil@example.com" in lines and f"| {SEPARATOR}" in lines


def test_base64_attachments_stay_out_of_the_summary(make_settings) -> None:
    msg = message()
    msg.attach("blob.bin", bytes(range(256)) * 64, "application/octet-stream")
    lines = summary_of(printed("summary", make_settings, msg))
    assert "|   blob.bin  application/octet-stream  16.0 KiB" in lines
    assert max(len(line) for line in lines) < 80


def test_a_long_text_is_cut_in_the_summary_only(make_settings) -> None:
    output = printed("summary", make_settings, message(body="\n".join(f"line {n}" for n in range(100))))
    lines = summary_of(output)
    assert "| line 39" in lines and "| line 40" not in lines and "| ... (60 more lines below)" in lines
    assert "line 99" in output.partition(WIRE_FORMAT)[2]


def test_an_html_only_message_says_so(make_settings) -> None:
    msg = message(body="<p>hi</p>")
    msg.content_subtype = "html"
    assert "| (no text part; the HTML part has 9 characters)" in summary_of(printed("summary", make_settings, msg))


def test_raw_prints_the_wire_format_alone(make_settings) -> None:
    output = printed("raw", make_settings, message(), message(subject="second"))
    assert WIRE_FORMAT not in output and "| " not in output
    chunks = [c for c in output.split(SEPARATOR + "\n") if c]
    assert len(chunks) == 2 and all(c.startswith("From: ") and "Content-Type: text/plain" in c for c in chunks)


def test_the_default_is_a_summary_in_development_only(make_settings) -> None:
    assert make_settings(gateway_env="development").console_format == "summary"
    assert make_settings(gateway_env="testing").console_format == "raw"
    assert make_settings(gateway_env="production", mail_server="smtp.example.com",
                         gateway_allow_anonymous=True).console_format == "raw"
    assert make_settings(gateway_env="testing", mail_console_format="summary").console_format == "summary"


def test_an_unknown_format_fails_at_start_up(monkeypatch) -> None:
    monkeypatch.setenv("MAIL_CONSOLE_FORMAT", "pretty")
    with pytest.raises(ConfigurationError) as raised:
        load_settings(_env_file=None)
    assert raised.value.variable == "MAIL_CONSOLE_FORMAT" and "summary or raw" in str(raised.value)


def test_control_characters_reach_the_terminal_escaped(make_settings) -> None:
    """Finding 11 of the hostile-client review: an ESC in a display name, subject, file name or text would
    drive the developer's terminal (clear it, retitle it, hide lines); the summary shows it escaped."""
    from mail_gateway.mail.rendering import RenderedMessage

    data = ("From: =?utf-8?q?Eve=1B=5B2J?= <eve@example.com>\r\nTo: \x1b]0;pwned\x07 <a@example.com>\r\n"
            "Subject: =?utf-8?q?hi=1B=5B8m?=\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
            "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nline\x1b[31m red\x9b0m\r\n"
            '--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; '
            'filename="=?utf-8?q?x=1B=5D0=3Bt=07.bin?="\r\n\r\nAAAA\r\n--b--\r\n').encode()
    stream = io.StringIO()
    backend = ConsoleBackend(make_settings(gateway_env="development", mail_backend="console").console, stream=stream)
    backend.deliver(RenderedMessage("<1@example.com>", "eve@example.com", ("a@example.com",), data))
    summary = "\n".join(summary_of(stream.getvalue()))
    assert not [c for c in summary if c != "\n" and (ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0)], summary
    assert "Eve\\x1b[2J" in summary and "hi\\x1b[8m" in summary and "\\x1b]0;t\\x07.bin" in summary
    assert "line\\x1b[31m red\\x9b0m" in summary


def test_a_raw_message_whose_parts_the_standard_library_cannot_walk_is_printed(make_settings, capsys) -> None:
    # A multipart whose boundary never comes holds its body as text, which get_body walked as characters: the
    # summary raised AttributeError, so under `make run`'s console backend the send answered 500.
    client = create_app(make_settings(gateway_env="development", mail_backend="console")).test_client()
    data = (b"From: app@example.com\r\nTo: friend@example.com\r\nSubject: Parts\r\nContent-Type: multipart/mixed; "
            b'boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nHello reader\r\n--b1\r\nContent-Type: '
            b'multipart/related; boundary="b2"\r\n\r\nno parts\r\n--b1--\r\n')
    answer = client.post("/v1/messages/raw", json={"mail_from": "app@example.com", "rcpt_to": ["friend@example.com"],
                                                   "data": base64.b64encode(data).decode()})
    assert answer.status_code == 202, answer.json
    assert "| Hello reader" in summary_of(capsys.readouterr().out)
