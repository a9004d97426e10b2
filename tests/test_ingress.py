"""The SMTP ingress relaying through each backend, with a real smtplib client and real aiosmtpd upstreams."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import socket
import threading
import time
from dataclasses import dataclass, field

import pytest
from api_helpers import parsed
from ingress_support import DEADLINE_SECONDS, Upstream, message_bytes, wait_until
from smtp_server import FaultHandler, RecordingHandler, free_port

from mail_gateway.backends.console import SEPARATOR

SENDER = "app@example.com"
RECIPIENTS = ["friend@example.com", "other@example.org"]



def data_reply(client: smtplib.SMTP, sender: str, recipients: list[str], data: bytes) -> tuple[int, bytes]:
    """MAIL, RCPT, DATA by hand, to read the reply to the final dot (``sendmail`` does not return it)."""
    assert client.ehlo()[0] == 250
    assert client.mail(sender)[0] == 250
    for recipient in recipients:
        assert client.rcpt(recipient)[0] == 250
    return client.data(data)


def test_relays_to_the_upstream_with_the_same_envelope_and_identical_bytes(ingress_factory, smtp_server) -> None:
    ingress = ingress_factory(**smtp_server.settings())
    data = message_bytes()
    with ingress.client() as client:
        code, reply = data_reply(client, SENDER, RECIPIENTS, data)
    assert code == 250 and b"<ingress-test@example.com>" in reply
    [received] = smtp_server.messages
    assert received.mail_from == SENDER and received.rcpt_tos == RECIPIENTS
    assert received.data == data


def test_the_memory_backend_keeps_the_message_unchanged(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory")
    data = message_bytes()
    with ingress.client() as client:
        assert client.sendmail(SENDER, RECIPIENTS, data) == {}
    [stored] = ingress.backend.messages
    assert stored.envelope_from == SENDER and list(stored.recipients) == RECIPIENTS
    assert stored.data == data and parsed(stored)["Message-ID"] == "<ingress-test@example.com>"


def test_the_console_backend_prints_the_message(ingress_factory, capsys) -> None:
    ingress = ingress_factory(mail_backend="console")
    with ingress.client() as client:
        client.sendmail(SENDER, RECIPIENTS, message_bytes(subject="Printed"))
    out = capsys.readouterr().out
    assert "Subject: Printed" in out and "non-ASCII: caf\u00e9 \u2713" in out and SEPARATOR in out


def test_the_file_backend_writes_the_message(ingress_factory, tmp_path) -> None:
    ingress = ingress_factory(mail_backend="file", mail_file_path=tmp_path / "mail")
    data = message_bytes()
    with ingress.client() as client:
        client.sendmail(SENDER, RECIPIENTS, data)
    [written] = list((tmp_path / "mail").glob("*.eml"))
    assert written.read_bytes().replace(b"\r\n", b"\n") == data.replace(b"\r\n", b"\n")


def test_a_message_without_message_id_is_relayed_without_one_added(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory")
    data = b"Subject: bare\r\n\r\nno id\r\n"
    with ingress.client() as client:
        code, reply = data_reply(client, SENDER, RECIPIENTS[:1], data)
    assert code == 250
    assert ingress.backend.messages[0].data == data


def test_451_while_the_upstream_is_down_then_250_once_it_is_back_and_delivered_once(make_settings,
                                                                                      ingress_factory) -> None:
    port = free_port()
    ingress = ingress_factory(mail_backend="smtp", mail_server="127.0.0.1", mail_port=port)
    data = message_bytes()
    with ingress.client() as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(SENDER, RECIPIENTS, data)
    assert refused.value.smtp_code == 451 and b"try again later" in refused.value.smtp_error
    upstream = Upstream(port)
    try:
        with ingress.client() as client:  # what the client's queue does: the same message again
            assert client.sendmail(SENDER, RECIPIENTS, data) == {}
        assert [m.data for m in upstream.messages] == [data]
    finally:
        upstream.stop()


def test_a_lost_upstream_reply_is_451_because_the_client_must_keep_the_message(ingress_factory,
                                                                               smtp_server_factory) -> None:
    upstream = smtp_server_factory(FaultHandler(disconnect_after_data=True))
    ingress = ingress_factory(**upstream.settings())
    with ingress.client() as client:
        code, reply = data_reply(client, SENDER, RECIPIENTS, message_bytes())
    assert code == 451 and b"may have been delivered" in reply
    assert len(upstream.messages) == 1  # the upstream did receive it; the warning is about that


@pytest.mark.parametrize(
    ("handler", "code", "text"),
    [
        (FaultHandler(data_reply="554 5.7.1 Message rejected as spam"), 554, b"rejected as spam"),
        (FaultHandler(mail_reply="550 5.7.1 Sender not allowed"), 554, b"Sender not allowed"),
        (FaultHandler(data_reply="452 4.3.1 Insufficient storage"), 451, b"Insufficient storage"),
        (FaultHandler(default_rcpt_reply="450 4.2.0 Mailbox busy"), 451, b"Mailbox busy"),
        (FaultHandler(default_rcpt_reply="550 5.1.1 No such user"), 550, b"No such user"),
    ],
    ids=["data-5xx", "mail-5xx", "data-4xx", "rcpt-all-4xx", "rcpt-all-5xx"],
)
def test_upstream_refusals_become_the_matching_reply(ingress_factory, smtp_server_factory, handler, code,
                                                     text) -> None:
    upstream = smtp_server_factory(handler)
    ingress = ingress_factory(**upstream.settings())
    with ingress.client() as client:
        reply_code, reply = data_reply(client, SENDER, RECIPIENTS, message_bytes())
    assert reply_code == code and text in reply
    assert upstream.messages == []


def test_every_refused_recipient_is_named_in_the_reply(ingress_factory, smtp_server_factory) -> None:
    upstream = smtp_server_factory(FaultHandler(default_rcpt_reply="550 5.1.1 No such user"))
    ingress = ingress_factory(**upstream.settings())
    with ingress.client() as client, pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail(SENDER, RECIPIENTS, message_bytes())
    assert all(r.encode() in refused.value.smtp_error for r in RECIPIENTS)


def test_a_partial_refusal_is_accepted_and_reported_in_the_reply(ingress_factory, smtp_server_factory,
                                                                 caplog) -> None:
    upstream = smtp_server_factory(FaultHandler(rcpt_replies={"other@example.org": "550 5.1.1 No such user"}))
    ingress = ingress_factory(**upstream.settings())
    with caplog.at_level(logging.INFO, logger="mail_gateway"), ingress.client() as client:
        code, reply = data_reply(client, SENDER, RECIPIENTS, message_bytes())
    assert code == 250
    assert b"1 of 2 recipients" in reply and b"<other@example.org> rejected" in reply and b"No such user" in reply
    assert [m.rcpt_tos for m in upstream.messages] == [["friend@example.com"]]
    assert "via=smtp" in caplog.text and "recipients=2 accepted=1 outcome=partly-accepted" in caplog.text


def test_one_log_line_per_message(ingress_factory, caplog) -> None:
    ingress = ingress_factory(mail_backend="memory")
    with caplog.at_level(logging.INFO, logger="mail_gateway"), ingress.client() as client:
        client.sendmail(SENDER, RECIPIENTS, message_bytes())
    [line] = [r.getMessage() for r in caplog.records if r.name.startswith("mail_gateway")]
    assert "via=smtp" in line and "message_id=<ingress-test@example.com>" in line and "backend=memory" in line
    assert "peer=127.0.0.1:" in line and "recipients=2 accepted=2 outcome=accepted" in line


def test_a_message_over_the_size_limit_is_refused_with_552(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_max_message_bytes=2048)
    big = message_bytes(body=b"x" * 70 + b"\r\n") * 40
    with ingress.client() as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "2048"
        with pytest.raises(smtplib.SMTPSenderRefused) as declared:  # smtplib declares SIZE= in MAIL FROM
            client.sendmail(SENDER, RECIPIENTS, big)
        assert declared.value.smtp_code == 552
        client.rset()
        code, _ = client.mail(SENDER)  # a client that does not declare the size is stopped after DATA
        assert code == 250 and client.rcpt(RECIPIENTS[0])[0] == 250
        assert client.data(big)[0] == 552
        assert client.noop()[0] == 250  # the session goes on
    assert ingress.backend.messages == []


def test_recipients_beyond_the_limit_are_refused_at_rcpt(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_max_recipients=2)
    with ingress.client() as client:
        client.ehlo()
        client.mail(SENDER)
        assert [client.rcpt(f"r{i}@example.com")[0] for i in range(3)] == [250, 250, 452]
        assert client.data(message_bytes())[0] == 250
    assert ingress.backend.messages[0].recipients == ("r0@example.com", "r1@example.com")


@dataclass
class GatheringHandler(RecordingHandler):
    """Answers DATA only once ``expected`` messages are in DATA at the same time: proof the ingress does not
    deliver one message after another. Answers 451 if they never all arrive."""

    expected: int = 0
    waiting: int = 0
    all_here: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_DATA(self, server, session, envelope):
        self.waiting += 1
        if self.waiting >= self.expected:
            self.all_here.set()
        try:
            await asyncio.wait_for(self.all_here.wait(), DEADLINE_SECONDS)
        except TimeoutError:
            return "451 4.0.0 the messages did not arrive together"
        return await super().handle_DATA(server, session, envelope)


def test_concurrent_sessions_are_relayed_together_and_each_delivered_once(ingress_factory,
                                                                          smtp_server_factory) -> None:
    sessions = 8
    upstream = smtp_server_factory(GatheringHandler(expected=sessions))
    ingress = ingress_factory(**upstream.settings(), gateway_smtp_max_sessions_per_address=sessions)
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            with ingress.client() as client:
                client.sendmail(SENDER, [f"r{n}@example.com"], message_bytes(message_id=f"<m{n}@example.com>"))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_SECONDS * 2)
    assert errors == []
    ids = sorted(m.data.split(b"Message-ID: ")[1].split(b"\r\n")[0] for m in upstream.messages)
    assert ids == sorted(f"<m{n}@example.com>".encode() for n in range(sessions))


def test_sessions_beyond_the_limit_are_told_to_come_back_later(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_max_sessions=2)
    first, second = ingress.client(), ingress.client()
    try:
        wait_until(lambda: ingress.server.active_sessions == 2, "both sessions are open")
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            ingress.client()
        assert refused.value.smtp_code == 421
        first.quit()
        wait_until(lambda: ingress.server.active_sessions == 1, "the first session has ended")
        with ingress.client() as third:
            assert third.sendmail(SENDER, RECIPIENTS, message_bytes()) == {}
        assert second.noop()[0] == 250
    finally:
        second.close()
    assert len(ingress.backend.messages) == 1


def test_an_idle_client_is_told_421_and_disconnected_after_the_command_timeout(ingress_factory, caplog) -> None:
    caplog.set_level(logging.INFO, logger="mail_gateway.ingress")
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_timeout=0.2)
    client = ingress.client()
    try:
        client.sock.settimeout(DEADLINE_SECONDS)
        received = b""
        while chunk := client.sock.recv(100):  # until the server closes the connection
            received += chunk
        # As Postfix says it: the client can tell a timeout from a dropped connection.
        assert received == b"421 4.4.2 No command in time, closing connection\r\n"
    finally:
        client.close()
    assert "no command within the timeout" in caplog.text
    wait_until(lambda: ingress.server.active_sessions == 0, "the session has been released")


def test_a_message_sent_slowly_but_steadily_is_not_cut_off_by_the_command_timeout(ingress_factory) -> None:
    # The timeout is for a client that stopped, not for a message that takes longer than it to send (RFC 5321
    # 4.5.3.2.5 times each chunk of DATA): a large message over a slow link would be cut off every time.
    # A chunk every 0.05 s for 2.5 times the timeout: the whole transfer outlasts the timeout whatever this
    # machine's speed, and only a pause of nearly 2 s between two chunks could end it.
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_timeout=2.0)
    with ingress.client() as client:
        assert client.ehlo()[0] == 250
        assert client.mail(SENDER)[0] == 250
        assert client.rcpt(RECIPIENTS[0])[0] == 250
        assert client.docmd("DATA")[0] == 354
        client.send(b"From: app@example.com\r\nSubject: slow\r\n\r\n")
        started, lines = time.monotonic(), 0
        while time.monotonic() - started < 5.0:
            time.sleep(0.05)
            client.send(b"line %d\r\n" % lines)
            lines += 1
        client.send(b".\r\n")
        assert client.getreply()[0] == 250
    assert ingress.backend.messages[0].data.endswith(b"line %d\r\n" % (lines - 1))


@dataclass
class HoldingHandler(RecordingHandler):
    """Holds each message at DATA until the test releases it, telling the test when one is held."""

    holding: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server, session, envelope):
        self.holding.set()
        while not self.released.is_set():  # the upstream's own loop; the test thread releases it
            await asyncio.sleep(0.01)
        return await super().handle_DATA(server, session, envelope)


def test_a_client_that_disconnects_mid_delivery_does_not_stop_the_delivery(ingress_factory, smtp_server_factory,
                                                                           caplog) -> None:
    upstream = smtp_server_factory(HoldingHandler())
    ingress = ingress_factory(**upstream.settings())
    with caplog.at_level(logging.INFO, logger="mail_gateway"):
        client = ingress.client()
        client.ehlo()
        client.mail(SENDER)
        client.rcpt(RECIPIENTS[0])
        assert client.docmd("DATA")[0] == 354
        client.send(message_bytes() + b".\r\n")
        assert upstream.handler.holding.wait(DEADLINE_SECONDS)
        client.close()  # gone before the reply to its final dot
        upstream.handler.released.set()
        wait_until(lambda: "via=smtp" in caplog.text and "outcome=accepted" in caplog.text, "the delivery is logged")
        # The session outlives its client until the delivery's reply is written, into the void here.
        wait_until(lambda: ingress.server.active_sessions == 0, "the ingress has noticed the disconnection")
    assert [m.rcpt_tos for m in upstream.messages] == [[RECIPIENTS[0]]]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_client_that_half_closes_after_quit_is_answered_and_its_message_delivered_once(
        ingress_factory, smtp_server_factory, caplog) -> None:
    upstream = smtp_server_factory(HoldingHandler())
    ingress = ingress_factory(**upstream.settings())
    with socket.create_connection(("127.0.0.1", ingress.port), timeout=DEADLINE_SECONDS) as sock:
        sock.sendall(b"EHLO client.example\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<friend@example.com>\r\n"
                     b"DATA\r\nSubject: pipelined\r\n\r\nhi\r\n.\r\nQUIT\r\n")
        sock.shutdown(socket.SHUT_WR)  # all it had to say: it now waits for the replies
        assert upstream.handler.holding.wait(DEADLINE_SECONDS)  # the delivery runs after the end of input
        upstream.handler.released.set()
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    assert b"\r\n354 " in received and b"\r\n250 2.0.0 OK: accepted by smtp" in received
    assert received.endswith(b"\r\n221 2.0.0 Bye\r\n")  # so the client knows it need not send it again
    assert [m.rcpt_tos for m in upstream.messages] == [["friend@example.com"]]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_non_ascii_address_needs_smtputf8_declared_at_mail_from(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory")
    with ingress.client() as client:
        client.ehlo()
        assert client.has_extn("smtputf8")
        assert client.mail(SENDER)[0] == 250
        client.send("RCPT TO:<j\u00f6rg@example.com>\r\n".encode())
        assert client.getreply()[0] == 553  # refused at RCPT, where the client can still go on without it
        assert client.rcpt(RECIPIENTS[0])[0] == 250
        assert client.data(message_bytes())[0] == 250
    with ingress.client() as client:
        client.ehlo()
        assert client.mail(SENDER, ["SMTPUTF8"])[0] == 250
        assert client.rcpt("j\u00f6rg@b\u00fccher.example")[0] == 250
        assert client.data(message_bytes())[0] == 250
    with ingress.client() as client:
        client.ehlo()
        assert client.mail(SENDER, ["SMTPUTF8"])[0] == 250
        client.send(b"RCPT TO:<j\xf6rg@example.com>\r\n")  # Latin-1, not UTF-8
        assert client.getreply()[0] == 553
    assert [m.recipients for m in ingress.backend.messages] == [(RECIPIENTS[0],), ("j\u00f6rg@b\u00fccher.example",)]


def test_the_smtp_ingress_and_the_http_api_share_one_backend(make_settings) -> None:
    from mail_gateway import MailGateway, create_app
    from mail_gateway.ingress.server import IngressServer

    settings = make_settings(mail_backend="memory")
    app = create_app(settings)
    backend = MailGateway.state(app).backend
    with IngressServer(settings, MailGateway.state(app).sender, port=0) as server:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=DEADLINE_SECONDS) as client:
            client.sendmail(SENDER, RECIPIENTS, message_bytes(subject="Over SMTP"))
    response = app.test_client().post("/v1/messages", json={"from": SENDER, "to": RECIPIENTS, "text": "Hi",
                                                            "subject": "Over HTTP"})
    assert response.status_code == 202
    assert [parsed(m)["Subject"] for m in backend.messages] == ["Over SMTP", "Over HTTP"]
