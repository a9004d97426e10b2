"""One contract every backend passes; each case only says how to build it, how to read what it delivered, and
how to make a delivery fail for real (a server's refusal, a closed stream, a directory gone, a size bound)."""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from email.message import EmailMessage as Parsed
from pathlib import Path

import pytest
from api_helpers import parsed
from flask_mailman import EmailMessage, EmailMultiAlternatives
from smtp_server import FaultHandler, SmtpServer

from mail_gateway.backends.base import EmailBackend
from mail_gateway.backends.console import SEPARATOR, WIRE_FORMAT, ConsoleBackend
from mail_gateway.backends.registry import create_backend
from mail_gateway.errors import DeliveryError, InvalidMessageError
from mail_gateway.mail.objects import render_email
from mail_gateway.mail.rendering import RenderedMessage, render_raw
from mail_gateway.mail.result import SendResult


def parse(data: bytes) -> Parsed:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


REFUSED = "refused@example.com"


class Case:
    """A backend under test, a way to read back (in order) every message it delivered, and how to make a
    delivery fail: ``refuse`` makes one message fail on its own (where the backend can tell messages apart),
    ``break_`` makes every delivery from now on fail."""

    def __init__(self, backend: EmailBackend, read: Callable[[], list[Parsed]], *,
                 refuse: Callable[[], RenderedMessage] | None = None, break_: Callable[[], None] | None = None,
                 closed: Callable[[], bool] = lambda: True, cleanup: Callable[[], None] = lambda: None) -> None:
        self.backend = backend
        self.read = read
        self.refuse = refuse
        self.break_ = break_
        self.closed = closed
        self.cleanup = cleanup


def smtp_case(make_settings, smtp_server_factory, tmp_path) -> Case:
    handler = FaultHandler(rcpt_replies={REFUSED: "550 5.1.1 no such user"})
    server: SmtpServer = smtp_server_factory(handler)
    backend = create_backend(make_settings(**server.settings(mail_retry_attempts=1)))

    def break_() -> None:
        handler.mail_reply = "554 5.7.1 not now, not ever"

    return Case(backend, lambda: [parse(m.data) for m in server.messages],
                refuse=lambda: render_email(message(to=[REFUSED])), break_=break_,
                closed=lambda: handler.quits == handler.connections)


def read_console(output: str) -> list[Parsed]:
    """Each message printed between separator lines, without the summary that may come before it."""
    messages = []
    for chunk in re.split(rf"(?m)^{SEPARATOR}\n", output):
        if not chunk.strip():
            continue
        summary, marker, wire = chunk.partition(f"{WIRE_FORMAT}\n")
        messages.append(parse((wire if marker else summary).strip("\n").encode("utf-8")))
    return messages


def _console_case(make_settings, tmp_path, console_format: str) -> Case:
    path = tmp_path / "console.txt"
    stream = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by break_ or by the fixture
    backend = ConsoleBackend(make_settings(mail_backend="console", mail_console_format=console_format).console,
                             stream=stream)
    # A closed stream, as a process's standard output can be: the next write fails.
    return Case(backend, lambda: read_console(path.read_text(encoding="utf-8")), break_=stream.close,
                cleanup=stream.close)


def console_case(make_settings, smtp_server_factory, tmp_path) -> Case:
    return _console_case(make_settings, tmp_path, "raw")


def console_summary_case(make_settings, smtp_server_factory, tmp_path) -> Case:
    return _console_case(make_settings, tmp_path, "summary")


def file_case(make_settings, smtp_server_factory, tmp_path) -> Case:
    directory = tmp_path / "outbox"
    backend = create_backend(make_settings(mail_backend="file", mail_file_path=directory))

    def break_() -> None:  # the directory is gone and a plain file has taken its name
        shutil.rmtree(directory)
        directory.write_text("not a directory")

    def read() -> list[Parsed]:
        return [parse(p.read_bytes()) for p in sorted(directory.glob("*.eml"))] if directory.is_dir() else []

    return Case(backend, read, break_=break_)


def memory_case(make_settings, smtp_server_factory, tmp_path) -> Case:
    backend = create_backend(make_settings(mail_backend="memory", mail_memory_max_bytes=16 * 1024))
    return Case(backend, lambda: [parsed(stored) for stored in backend.messages],  # type: ignore[attr-defined]
                refuse=lambda: render_email(message(body="x" * 20_000)))


@pytest.fixture(params=[smtp_case, console_case, console_summary_case, file_case, memory_case],
                ids=["smtp", "console", "console-summary", "file", "memory"])
def case(request, make_settings, smtp_server_factory, tmp_path: Path) -> Iterator[Case]:
    built: Case = request.param(make_settings, smtp_server_factory, tmp_path)
    yield built
    built.backend.close()
    built.cleanup()


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
    # The envelope's form, as every way in reports it: the domain in IDNA 2008 A-labels.
    assert [r.email for r in result.recipients] == ["zoe@xn--bcher-kva.example"]


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


def test_a_message_changed_after_sending_does_not_change_what_was_delivered(case: Case) -> None:
    msg = message()
    case.backend.send_messages([msg])
    msg.subject = "changed"
    msg.body = "changed"
    [received] = case.read()
    assert received["Subject"] == "Hello"


def test_hold_keeps_several_calls_together(case: Case) -> None:
    with case.backend.hold():
        case.backend.send_messages([message(subject="a")])
        case.backend.send_messages([message(subject="b")])
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


def test_deliver_all_reports_every_outcome_in_order(case: Case) -> None:
    rendered = [render_email(message(subject=f"b{i}")) for i in range(3)]
    outcomes = case.backend.deliver_all(rendered)
    assert [o.message_id for o in outcomes] == [r.message_id for r in rendered]
    assert all(isinstance(o, SendResult) for o in outcomes)
    assert sorted(m["Subject"] for m in case.read()) == ["b0", "b1", "b2"]  # a backend may send them in parallel


def test_a_raw_message_is_delivered_byte_for_byte_after_the_added_headers(case: Case) -> None:
    raw = b"From: app@example.com\r\nTo: friend@example.com\r\nSubject: raw\r\n\r\nbody line\r\n"
    result = case.backend.deliver(render_raw("app@example.com", ["friend@example.com"], raw))
    [received] = case.read()
    assert received["Subject"] == "raw" and received["Message-ID"] == result.message_id
    assert received["Date"] is not None


# -- failures ------------------------------------------------------------------------------------------------

def _failing(case: Case) -> RenderedMessage:
    """A message whose delivery will fail, by the case's own real means."""
    if case.refuse is not None:
        return case.refuse()
    assert case.break_ is not None, "every backend can fail somehow"
    case.break_()
    return render_email(message(subject="doomed"))


@pytest.mark.parametrize("fault", [dict(to=[]), dict(from_email=""), dict(subject="Hi\nBcc: victim@example.com"),
                                   dict(to=["not an address"])], ids=["no-recipient", "no-sender", "injection",
                                                                      "bad-address"])
def test_an_invalid_message_is_refused_before_anything_is_sent(case: Case, fault: dict) -> None:
    invalid = message()
    for name, value in fault.items():  # set afterwards: flask-mailman would fill in an empty sender from an app
        setattr(invalid, name, value)
    with pytest.raises(InvalidMessageError):
        case.backend.send_messages([message(subject="fine"), invalid])
    assert case.read() == []


def test_a_failed_delivery_raises_a_delivery_error_naming_backend_and_message(case: Case) -> None:
    doomed = _failing(case)
    with pytest.raises(DeliveryError) as caught:
        case.backend.deliver(doomed)
    assert caught.value.backend == case.backend.name and caught.value.message_id == doomed.message_id
    assert [m["Message-ID"] for m in case.read()] == []


def test_deliver_all_reports_failures_in_place_without_stopping(case: Case) -> None:
    if case.refuse is not None:  # one message fails on its own; the others still go
        batch = [render_email(message(subject="a")), case.refuse(), render_email(message(subject="c"))]
        expected = [SendResult, DeliveryError, SendResult]
    else:  # every delivery fails, and each is reported in its place
        case.break_()  # type: ignore[misc]
        batch = [render_email(message(subject=s)) for s in "abc"]
        expected = [DeliveryError] * 3
    outcomes = case.backend.deliver_all(batch)
    assert [o.message_id for o in outcomes] == [m.message_id for m in batch]
    assert [next(t for t in (SendResult, DeliveryError) if isinstance(o, t)) for o in outcomes] == expected
    assert sorted(m["Subject"] for m in case.read()) == sorted(
        m for m, kind in zip("abc", expected, strict=True) if kind is SendResult)


def test_send_messages_stops_at_the_first_failure(case: Case) -> None:
    if case.refuse is None:
        case.break_()  # type: ignore[misc]
        with pytest.raises(DeliveryError):
            case.backend.send_messages([message(subject="a"), message(subject="b")])
        assert case.read() == []
        return
    refused = message(to=[REFUSED]) if case.backend.name == "smtp" else message(body="x" * 20_000)
    with pytest.raises(DeliveryError):
        case.backend.send_messages([message(subject="a"), refused, message(subject="c")])
    assert [m["Subject"] for m in case.read()] == ["a"]


def test_close_releases_what_it_holds_and_the_backend_still_works(case: Case) -> None:
    case.backend.send_messages([message(subject="before")])
    case.backend.close()
    assert case.closed()  # the SMTP server heard QUIT on every connection
    case.backend.close()  # a second close is harmless
    case.backend.send_messages([message(subject="after")])
    case.backend.close()
    assert [m["Subject"] for m in case.read()] == ["before", "after"]
    assert case.closed()
