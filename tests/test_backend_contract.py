"""One contract every backend passes; each case only says how to build it and how to read what it kept."""

from __future__ import annotations

import email
import email.policy
import io
import re
import threading
from collections.abc import Callable
from email.message import EmailMessage as Parsed
from pathlib import Path

import pytest
from flask_mailman import EmailMessage, EmailMultiAlternatives
from smtp_server import SmtpServer

from backends import EmailBackend, InvalidMessageError, create_backend
from backends.console import SEPARATOR, WIRE_FORMAT, ConsoleBackend


def parse(data: bytes) -> Parsed:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


class Case:
    """A backend under test and a way to read back, in order, every message it delivered."""

    def __init__(self, backend: EmailBackend, read: Callable[[], list[Parsed]]) -> None:
        self.backend = backend
        self.read = read


def smtp_case(make_settings, smtp_server_factory, tmp_path) -> Case:
    server: SmtpServer = smtp_server_factory()
    backend = create_backend(make_settings(**server.settings()))
    return Case(backend, lambda: [parse(m.data) for m in server.messages])


def read_console(output: str) -> list[Parsed]:
    """Each message printed between separator lines, without the summary that may come before it."""
    messages = []
    for chunk in re.split(rf"(?m)^{SEPARATOR}\n", output):
        if not chunk.strip():
            continue
        summary, marker, wire = chunk.partition(f"{WIRE_FORMAT}\n")
        messages.append(parse((wire if marker else summary).strip("\n").encode("utf-8")))
    return messages


def console_case(make_settings, smtp_server_factory, tmp_path) -> Case:
    stream = io.StringIO()
    backend = ConsoleBackend(make_settings(mail_backend="console", mail_console_format="raw"), stream=stream)
    return Case(backend, lambda: read_console(stream.getvalue()))


def console_summary_case(make_settings, smtp_server_factory, tmp_path) -> Case:
    stream = io.StringIO()
    backend = ConsoleBackend(make_settings(mail_backend="console", mail_console_format="summary"), stream=stream)
    return Case(backend, lambda: read_console(stream.getvalue()))


def file_case(make_settings, smtp_server_factory, tmp_path) -> Case:
    directory = tmp_path / "outbox"
    backend = create_backend(make_settings(mail_backend="file", mail_file_path=directory))
    return Case(backend, lambda: [parse(p.read_bytes()) for p in sorted(directory.glob("*.eml"))])


def memory_case(make_settings, smtp_server_factory, tmp_path) -> Case:
    backend = create_backend(make_settings(mail_backend="memory"))
    return Case(backend, lambda: [stored.parsed() for stored in backend.outbox])  # type: ignore[attr-defined]


@pytest.fixture(params=[smtp_case, console_case, console_summary_case, file_case, memory_case],
                ids=["smtp", "console", "console-summary", "file", "memory"])
def case(request, make_settings, smtp_server_factory, tmp_path: Path) -> Case:
    return request.param(make_settings, smtp_server_factory, tmp_path)


def message(**kwargs) -> EmailMultiAlternatives:
    defaults = {"subject": "Hello", "body": "This is a test email.", "from_email": "app@example.com",
                "to": ["friend@example.com"]}
    msg = EmailMultiAlternatives(**{**defaults, **kwargs})
    msg.encoding = "utf-8"
    return msg


def test_one_message_is_delivered_with_the_reported_message_id(case: Case) -> None:
    [result] = case.backend.send_messages([message()])
    [received] = case.read()
    assert received["Message-ID"] == result.message_id
    assert received["Subject"] == "Hello"
    assert received.get_content().strip() == "This is a test email."
    assert [(r.email, r.status) for r in result.recipients] == [("friend@example.com", "accepted")]
    assert result.backend == case.backend.name


def test_several_messages_arrive_in_order_with_one_result_each(case: Case) -> None:
    results = case.backend.send_messages([message(subject=f"n{i}") for i in range(3)])
    assert [m["Subject"] for m in case.read()] == ["n0", "n1", "n2"]
    assert [r.message_id for r in results] == [m["Message-ID"] for m in case.read()]
    assert len({r.message_id for r in results}) == 3


def test_no_messages_sends_nothing(case: Case) -> None:
    assert case.backend.send_messages([]) == []
    assert case.read() == []


def test_non_ascii_names_text_and_idn_domains_survive(case: Case) -> None:
    msg = message(subject="Grüße ✓", body="Schöne Grüße aus Köln", from_email="Jörg Müller <jm@example.com>",
                  to=["Zoë <zoe@bücher.example>"])
    [result] = case.backend.send_messages([msg])
    [received] = case.read()
    assert received["Subject"] == "Grüße ✓"
    assert received["From"].addresses[0].display_name == "Jörg Müller"
    assert received["To"].addresses[0].domain == "xn--bcher-kva.example"
    assert received.get_content().strip() == "Schöne Grüße aus Köln"
    assert [r.email for r in result.recipients] == ["zoe@bücher.example"]


def test_bcc_recipients_get_results_but_no_header(case: Case) -> None:
    [result] = case.backend.send_messages([message(cc=["c@example.com"], bcc=["hidden@example.com"])])
    [received] = case.read()
    assert {r.email for r in result.recipients} == {"friend@example.com", "c@example.com", "hidden@example.com"}
    assert "hidden@example.com" not in received.as_string()


def test_html_alternative_is_kept(case: Case) -> None:
    msg = message()
    msg.attach_alternative("<p>This is <b>HTML</b></p>", "text/html")
    case.backend.send_messages([msg])
    [received] = case.read()
    assert received.get_content_type() == "multipart/alternative"
    assert "<b>HTML</b>" in received.get_body(("html",)).get_content()


def test_header_injection_is_refused_before_anything_is_sent(case: Case) -> None:
    with pytest.raises(InvalidMessageError):
        case.backend.send_messages([message(subject="fine"), message(subject="Hi\nBcc: victim@example.com")])
    assert case.read() == []


def test_a_message_changed_after_sending_does_not_change_what_was_delivered(case: Case) -> None:
    msg = message()
    case.backend.send_messages([msg])
    msg.subject = "changed"
    msg.body = "changed"
    [received] = case.read()
    assert received["Subject"] == "Hello"


def test_context_manager_sends_several_calls(case: Case) -> None:
    with case.backend as backend:
        backend.send_messages([message(subject="a")])
        backend.send_messages([message(subject="b")])
    assert [m["Subject"] for m in case.read()] == ["a", "b"]


def test_flask_mailman_message_without_message_id_gets_one_that_is_reported(case: Case) -> None:
    msg = EmailMessage("plain", "body", "app@example.com", ["friend@example.com"])
    msg.encoding = "utf-8"
    [result] = case.backend.send_messages([msg])
    assert case.read()[0]["Message-ID"] == result.message_id


def test_concurrent_sends_each_arrive_exactly_once(case: Case) -> None:
    def send(n: int) -> None:
        for i in range(5):
            case.backend.send_messages([message(subject=f"t{n}-{i}")])

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    subjects = sorted(m["Subject"] for m in case.read())
    assert subjects == sorted(f"t{n}-{i}" for n in range(4) for i in range(5))


def test_send_batch_reports_every_outcome_in_order(case: Case) -> None:
    from backends.rendering import render_message

    rendered = [render_message(message(subject=f"b{i}")) for i in range(3)]
    outcomes = case.backend.send_batch(rendered)
    assert [o.message_id for o in outcomes] == [r.message_id for r in rendered]
    assert sorted(m["Subject"] for m in case.read()) == ["b0", "b1", "b2"]  # a backend may send them in parallel


def test_a_raw_message_is_delivered_byte_for_byte_after_the_added_headers(case: Case) -> None:
    from backends.rendering import render_raw

    raw = b"From: app@example.com\r\nTo: friend@example.com\r\nSubject: raw\r\n\r\nbody line\r\n"
    [result] = case.backend.send_rendered([render_raw("app@example.com", ["friend@example.com"], raw)])
    [received] = case.read()
    assert received["Subject"] == "raw" and received["Message-ID"] == result.message_id
    assert received["Date"] is not None
