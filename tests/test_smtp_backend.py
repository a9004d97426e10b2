"""The smtp backend against real aiosmtpd servers that refuse, stall, disconnect, or demand AUTH."""

from __future__ import annotations

import logging
import socket
import threading

import pytest
from aiosmtpd.smtp import AuthResult
from flask_mailman import EmailMultiAlternatives
from ingress_support import wait_until
from smtp_server import HOST, FaultHandler, RecordingHandler, RefusingSMTP, free_port

from mail_gateway import create_app
from mail_gateway.assembly import build_sender
from mail_gateway.backends.registry import create_backend
from mail_gateway.errors import (
    DeliveryOutcomeUnknownError,
    MessageTooLargeError,
    PermanentDeliveryError,
    RecipientsRefusedError,
    TransientDeliveryError,
)
from mail_gateway.mail.objects import render_email
from mail_gateway.mail.result import SendResult


def message(to=("a@example.com", "b@example.com"), subject="Hi", body="Body") -> EmailMultiAlternatives:
    return EmailMultiAlternatives(subject, body, "app@example.com", list(to))


@pytest.fixture(params=[False, True], ids=["one-by-one", "pipelined"])
def smtp_server_factory(request, smtp_server_factory):
    """Every test here runs against a server without and with RFC 2920 PIPELINING."""

    def start(handler=None, **smtp_kwargs):
        handler = handler if handler is not None else RecordingHandler()
        handler.pipelining = request.param
        return smtp_server_factory(handler, **smtp_kwargs)

    return start


@pytest.fixture
def backend_for(make_settings):
    built = []

    def build(server, **overrides):
        backend = create_backend(make_settings(**server.settings(**overrides)))
        built.append(backend)
        return backend

    yield build
    for backend in built:
        backend.close()


# -- server replies ---------------------------------------------------------------------------------------

def test_a_partly_refused_message_is_accepted_for_the_others(smtp_server_factory, backend_for) -> None:
    server = smtp_server_factory(FaultHandler(rcpt_replies={"b@example.com": "550 5.1.1 no such user"}))
    [result] = backend_for(server).send_messages([message()])
    assert [(r.email, r.status, r.code, r.reason) for r in result.recipients] == [
        ("a@example.com", "accepted", None, None),
        ("b@example.com", "rejected", 550, "5.1.1 no such user"),
    ]
    assert [m.rcpt_tos for m in server.messages] == [["a@example.com"]]


def test_every_recipient_refused_permanently_is_not_retried(smtp_server_factory, backend_for) -> None:
    server = smtp_server_factory(FaultHandler(default_rcpt_reply="550 5.1.1 no such user"))
    with pytest.raises(RecipientsRefusedError) as caught:
        backend_for(server).send_messages([message()])
    assert [(r.status, r.code) for r in caught.value.recipients] == [("rejected", 550), ("rejected", 550)]
    assert server.messages == [] and server.handler.data_commands == 0


def test_451_at_rcpt_is_retried_and_then_transient(smtp_server_factory, backend_for) -> None:
    server = smtp_server_factory(FaultHandler(default_rcpt_reply="451 4.3.0 try later"))
    with pytest.raises(TransientDeliveryError) as caught:
        backend_for(server, mail_retry_attempts=3).send_messages([message()])
    assert {r.status for r in caught.value.recipients} == {"deferred"}
    assert caught.value.attempts == 3 and server.handler.data_commands == 0


@pytest.mark.parametrize(
    ("faults", "error", "code", "data_commands"),
    [
        (dict(data_reply="554 5.6.0 content rejected"), PermanentDeliveryError, 554, 1),
        (dict(data_reply="451 4.3.0 try later"), TransientDeliveryError, 451, 3),
        (dict(mail_reply="553 5.7.1 sender not allowed"), PermanentDeliveryError, 553, 0),
        (dict(mail_reply="421 4.7.0 closing"), TransientDeliveryError, 421, 0),
    ],
    ids=["554-at-data", "451-at-data", "553-at-mail", "421-at-mail"],
)
def test_server_replies_map_to_transient_or_permanent(smtp_server_factory, backend_for, faults, error, code,
                                                      data_commands):
    handler = FaultHandler(**faults)
    server = smtp_server_factory(handler)
    with pytest.raises(error) as caught:
        backend_for(server, mail_retry_attempts=3).send_messages([message()])
    assert caught.value.smtp_code == code
    assert caught.value.upstream == f"{HOST}:{server.port}"
    assert not isinstance(caught.value, RecipientsRefusedError)
    assert handler.data_commands == data_commands  # 5xx is never retried; 4xx is, up to MAIL_RETRY_ATTEMPTS
    assert server.messages == []


def test_pipelining_sends_mail_rcpt_and_data_in_one_write(smtp_server_factory, backend_for) -> None:
    server = smtp_server_factory(FaultHandler(rcpt_replies={"b@example.com": "550 5.1.1 no such user"}))
    [result] = backend_for(server).send_messages([message()])
    assert [r.status for r in result.recipients] == ["accepted", "rejected"]
    pipelined = server.handler.pipelining
    assert (server.handler.buffered_at_mail[0] > 0) == pipelined


def test_451_at_data_then_accepted_delivers_exactly_once(smtp_server_factory, backend_for) -> None:
    server = smtp_server_factory(FaultHandler(data_reply="451 4.3.0 try later", faults_left=1))
    [result] = backend_for(server).send_messages([message()])
    assert len(result.accepted) == 2
    assert server.handler.data_commands == 2 and len(server.messages) == 1


def test_421_at_connect_is_transient_and_retried(smtp_server_factory, backend_for) -> None:
    server = smtp_server_factory(RecordingHandler(), smtp_class=RefusingSMTP)
    with pytest.raises(TransientDeliveryError) as caught:
        backend_for(server, mail_retry_attempts=2).send_messages([message()])
    assert caught.value.smtp_code == 421 and "refused the connection" in str(caught.value)
    assert caught.value.attempts == 2


def test_a_disconnect_before_the_final_dot_is_retried_once_delivered(smtp_server_factory, backend_for) -> None:
    server = smtp_server_factory(FaultHandler(disconnect_at_rcpt=True, faults_left=1))
    [result] = backend_for(server).send_messages([message()])
    assert result.accepted and len(server.messages) == 1


def test_lost_reply_after_the_final_dot_is_unknown_and_never_resent(smtp_server_factory, backend_for) -> None:
    server = smtp_server_factory(FaultHandler(disconnect_after_data=True))
    with pytest.raises(DeliveryOutcomeUnknownError) as caught:
        backend_for(server, mail_retry_attempts=5).send_messages([message()])
    assert len(server.messages) == 1  # the server did get it: retrying would have sent it twice
    assert server.handler.data_commands == 1
    assert caught.value.message_id is not None


def test_a_silent_server_times_out(smtp_server_factory, backend_for) -> None:
    server = smtp_server_factory(FaultHandler(stall_at="RCPT"))
    with pytest.raises(TransientDeliveryError, match="before the message was sent"):
        backend_for(server, mail_timeout=0.3, mail_retry_attempts=1).send_messages([message()])


def test_a_server_silent_after_the_data_is_unknown(smtp_server_factory, backend_for) -> None:
    server = smtp_server_factory(FaultHandler(stall_at="DATA"))
    with pytest.raises(DeliveryOutcomeUnknownError):
        backend_for(server, mail_timeout=0.3, mail_retry_attempts=3).send_messages([message()])
    assert server.handler.data_commands == 1


def test_connection_refused_is_transient(make_settings) -> None:
    backend = create_backend(make_settings(mail_backend="smtp", mail_server=HOST, mail_port=free_port(),
                                           mail_retry_backoff=0.001))
    with pytest.raises(TransientDeliveryError, match="could not connect"):
        backend.send_messages([message()])


def test_a_server_that_never_greets_times_out_at_connect_and_is_failed_over(smtp_server, make_settings) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) but never says a word
        silent.bind((HOST, 0))
        silent.listen(8)
        silent_url = f"smtp://{HOST}:{silent.getsockname()[1]}"
        alone = create_backend(make_settings(mail_url=silent_url, mail_timeout=0.2, mail_retry_attempts=2,
                                             mail_retry_backoff=0.001))
        with pytest.raises(TransientDeliveryError, match="could not connect: .*timed out"):
            alone.send_messages([message()])
        url = f"failover({silent_url} smtp://{HOST}:{smtp_server.port})"
        backend = create_backend(make_settings(mail_url=url, mail_timeout=0.2))
        [result] = backend.send_messages([message()])
        backend.close()
    assert result.accepted and len(smtp_server.messages) == 1


def test_a_message_over_the_advertised_size_is_refused_up_front(smtp_server_factory, backend_for,
                                                                make_settings) -> None:
    server = smtp_server_factory(RecordingHandler(), data_size_limit=2000)
    backend = backend_for(server)
    with pytest.raises(MessageTooLargeError, match="at most 2000"):
        backend.send_messages([message(body="x" * 5000)])
    [small] = backend.send_messages([message()])
    assert small.accepted and len(server.messages) == 1  # the connection stayed usable
    client = create_app(make_settings(**server.settings())).test_client()
    response = client.post("/v1/messages", json={"from": "app@example.com", "to": ["a@example.com"],
                                                  "subject": "big", "text": "x" * 5000})
    assert response.status_code == 413 and response.mimetype == "application/problem+json"
    assert response.get_json()["type"].endswith("message-too-large")


# -- the pool --------------------------------------------------------------------------------------------

def test_connections_are_reused_across_sends_and_with_blocks(smtp_server, backend_for) -> None:
    backend = backend_for(smtp_server)
    backend.send_messages([message(), message()])
    with backend.hold():
        backend.send_messages([message()])
        backend.send_messages([message()])
    backend.send_messages([message()])
    assert len(smtp_server.messages) == 5
    assert len({m.peer for m in smtp_server.messages}) == 1 and smtp_server.handler.connections == 1


def test_a_connection_is_retired_after_max_messages(smtp_server, backend_for) -> None:
    backend = backend_for(smtp_server, mail_pool_max_messages=2)
    for _ in range(5):
        backend.send_messages([message()])
    peers = [m.peer for m in smtp_server.messages]
    assert peers[0] == peers[1] != peers[2] == peers[3] != peers[4]


def test_idle_connections_are_closed_after_the_idle_timeout(smtp_server, backend_for) -> None:
    backend = backend_for(smtp_server, mail_pool_idle_timeout=0.1)
    backend.send_messages([message()])
    wait_until(lambda: smtp_server.handler.quits == 1, "the idle connection said QUIT")
    backend.send_messages([message()])
    assert smtp_server.handler.connections == 2


def test_a_connection_the_server_dropped_while_idle_is_replaced(smtp_server, backend_for) -> None:
    backend = backend_for(smtp_server, mail_retry_attempts=1)  # noticed on borrow, not by a failed retry
    backend.send_messages([message()])
    smtp_server.drop_connections()
    [result] = backend.send_messages([message()])
    assert result.accepted
    assert len(smtp_server.messages) == 2 and smtp_server.messages[0].peer != smtp_server.messages[1].peer


def test_a_connection_dropped_just_as_it_is_reused_is_replaced_at_once(smtp_server_factory, backend_for) -> None:
    server = smtp_server_factory(FaultHandler(hang_up_on_reuse=True, faults_left=1))
    backend = backend_for(server, mail_retry_attempts=1)  # no retry to spend: the replacement is not one
    backend.send_messages([message(subject="first")])
    [result] = backend.send_messages([message(subject="second")])
    assert result.accepted
    assert len(server.messages) == 2 and server.handler.connections == 2


def test_a_reused_connection_that_times_out_is_not_tried_again_at_once(smtp_server_factory, backend_for) -> None:
    handler = FaultHandler()
    server = smtp_server_factory(handler)
    backend = backend_for(server, mail_timeout=0.3, mail_retry_attempts=1)
    backend.send_messages([message()])
    handler.stall_at = "RCPT"
    with pytest.raises(TransientDeliveryError, match="timed out"):
        backend.send_messages([message()])
    assert handler.connections == 1  # a silent server is not a dropped connection: no fresh one was opened


def test_a_with_block_continues_on_a_new_connection_after_one_is_lost(smtp_server_factory, backend_for) -> None:
    handler = FaultHandler(disconnect_after_data=True)
    server = smtp_server_factory(handler)
    backend = backend_for(server)
    with backend.hold():
        with pytest.raises(DeliveryOutcomeUnknownError):
            backend.send_messages([message()])
        handler.disconnect_after_data = False
        [result] = backend.send_messages([message()])
    assert len(server.messages) == 2 and server.messages[0].peer != server.messages[1].peer
    assert result.accepted


def test_many_threads_through_a_small_pool_deliver_each_message_exactly_once(smtp_server, backend_for) -> None:
    backend = backend_for(smtp_server, mail_pool_size=2)
    sent: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            for i in range(6):
                [result] = backend.send_messages([message(subject=f"t{n}-{i}")])
                with lock:
                    sent.append(result.message_id)
        except BaseException as exc:  # reported below; a thread's exception would otherwise be lost
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    arrived = [m.data.split(b"Message-ID: ")[1].split(b"\r\n")[0].decode() for m in smtp_server.messages]
    assert sorted(arrived) == sorted(sent) and len(set(sent)) == 48
    assert smtp_server.handler.connections <= 2


def test_send_batch_uses_several_connections_and_reports_in_order(smtp_server_factory, backend_for) -> None:
    server = smtp_server_factory(FaultHandler(rcpt_replies={"bad@example.com": "550 5.1.1 no such user"}))
    backend = backend_for(server, mail_pool_size=4)  # batches take half of it: two connections
    batch = [render_email(message(to=["bad@example.com"] if i == 4 else ["a@example.com"], subject=f"b{i}"))
             for i in range(12)]
    outcomes = backend.deliver_all(batch)
    assert [o.message_id for o in outcomes] == [m.message_id for m in batch]
    assert isinstance(outcomes[4], RecipientsRefusedError)
    assert all(isinstance(o, SendResult) for i, o in enumerate(outcomes) if i != 4)
    assert len(server.messages) == 11 and 1 <= server.handler.connections <= 2


def test_a_send_waits_for_a_free_connection_and_then_gives_up(smtp_server, backend_for) -> None:
    backend = backend_for(smtp_server, mail_pool_size=1, mail_timeout=0.2, mail_retry_attempts=1)
    outcome: list[BaseException] = []

    def other_thread() -> None:
        try:
            backend.send_messages([message()])
        except BaseException as exc:
            outcome.append(exc)

    with backend.hold():
        backend.send_messages([message()])  # this thread now holds the pool's only connection
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert isinstance(outcome[0], TransientDeliveryError) and "MAIL_POOL_SIZE" in str(outcome[0])
    backend.send_messages([message()])  # released at the end of hold(): usable again
    assert len(smtp_server.messages) == 2


# -- upstreams ---------------------------------------------------------------------------------------------

def test_failover_moves_to_the_second_server_when_the_first_is_down(smtp_server, make_settings) -> None:
    down = f"smtp://{HOST}:{free_port()}"
    backend = create_backend(make_settings(mail_url=f"failover({down} smtp://{HOST}:{smtp_server.port})"))
    [first] = backend.send_messages([message()])
    [second] = backend.send_messages([message()])
    backend.close()
    assert (first.upstream, first.attempts) == (f"{HOST}:{smtp_server.port}", 2)
    assert second.attempts == 1  # the failed upstream rests instead of being tried first again
    assert len(smtp_server.messages) == 2


def test_failover_after_421_at_connect(smtp_server_factory, smtp_server, make_settings) -> None:
    refusing = smtp_server_factory(RecordingHandler(), smtp_class=RefusingSMTP)
    url = f"failover(smtp://{HOST}:{refusing.port} smtp://{HOST}:{smtp_server.port})"
    backend = create_backend(make_settings(mail_url=url))
    [result] = backend.send_messages([message()])
    backend.close()
    assert result.accepted and len(smtp_server.messages) == 1


def test_roundrobin_spreads_messages_over_the_servers(smtp_server_factory, make_settings) -> None:
    a, b = smtp_server_factory(), smtp_server_factory()
    backend = create_backend(make_settings(mail_url=f"roundrobin(smtp://{HOST}:{a.port} smtp://{HOST}:{b.port})"))
    for _ in range(4):
        backend.send_messages([message()])
    backend.close()
    assert len(a.messages) == 2 and len(b.messages) == 2


def test_roundrobin_skips_a_server_that_is_down(smtp_server, make_settings) -> None:
    url = f"roundrobin(smtp://{HOST}:{free_port()} smtp://{HOST}:{smtp_server.port})"
    backend = create_backend(make_settings(mail_url=url, mail_retry_attempts=2))
    for _ in range(4):
        backend.send_messages([message()])
    backend.close()
    assert len(smtp_server.messages) == 4


# -- authentication ------------------------------------------------------------------------------------------

class Authenticator:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        self.seen.append((mechanism, auth_data.login.decode(), auth_data.password.decode()))
        ok = auth_data.password == b"s3cret-pw"
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_login_is_used_when_a_username_is_set(smtp_server_factory, backend_for, mechanism) -> None:
    authenticator = Authenticator()
    other = {"PLAIN": "LOGIN", "LOGIN": "PLAIN"}[mechanism]
    server = smtp_server_factory(FaultHandler(), authenticator=authenticator, auth_require_tls=False,
                                 auth_exclude_mechanism=[other])
    backend_for(server, mail_username="app", mail_password="s3cret-pw").send_messages([message()])
    assert authenticator.seen == [(mechanism, "app", "s3cret-pw")]
    assert len(server.messages) == 1


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_a_refused_login_names_the_user_never_the_password_and_is_not_reused(
        smtp_server_factory, backend_for, mechanism, caplog) -> None:
    authenticator = Authenticator()
    other = {"PLAIN": "LOGIN", "LOGIN": "PLAIN"}[mechanism]
    server = smtp_server_factory(FaultHandler(), authenticator=authenticator, auth_require_tls=False,
                                 auth_exclude_mechanism=[other])
    backend = backend_for(server, mail_username="app", mail_password="wrong-pw")
    with caplog.at_level(logging.DEBUG):
        for _ in range(2):
            with pytest.raises(PermanentDeliveryError) as caught:
                backend.send_messages([message()])
            assert caught.value.smtp_code == 535
            assert "'app'" in str(caught.value)
            assert "wrong-pw" not in str(caught.value) and "wrong-pw" not in repr(caught.value)
    assert "wrong-pw" not in caplog.text and "wrong-pw" not in repr(backend)
    assert len(authenticator.seen) == 2  # not retried (5xx), and each send needed a fresh connection
    assert server.handler.connections == 2 and server.messages == []
    backend.close()
    assert server.handler.quits == 0  # no connection whose login failed was kept to be closed politely


def test_a_refused_login_is_a_502_with_the_smtp_reply_and_the_upstream_only_in_the_log(
        smtp_server_factory, make_settings, caplog) -> None:
    server = smtp_server_factory(FaultHandler(), authenticator=Authenticator(), auth_require_tls=False)
    client = create_app(make_settings(**server.settings(mail_username="app", mail_password="wrong-pw"))).test_client()
    with caplog.at_level(logging.INFO, logger="mail_gateway.delivery"):
        response = client.post("/v1/messages", json={"from": "app@example.com", "to": ["a@example.com"], "text": "x"})
    assert response.status_code == 502
    body = response.get_json()
    # The Message-ID's random digits may hold the port's by chance: not a leak.
    text = response.get_data(as_text=True).replace(body.get("message_id") or "\0", "")
    assert body["type"] == "urn:mail-gateway:problem:upstream-refused"
    assert body["smtp_code"] == 535 and body["smtp_text"] == "5.7.8 Authentication credentials invalid"
    assert str(server.port) not in text and HOST not in text and "'app'" not in text and "wrong-pw" not in text
    # The operator still finds which upstream and which login in the delivery log.
    assert f"{HOST}:{server.port}" in caplog.text and "user 'app'" in caplog.text and "wrong-pw" not in caplog.text


# -- the delivery log --------------------------------------------------------------------------------------

def test_one_log_line_per_delivery_without_body_or_secrets(smtp_server_factory, make_settings, caplog) -> None:
    server = smtp_server_factory(FaultHandler(data_reply="451 4.3.0 later", faults_left=1),
                                 authenticator=Authenticator(), auth_require_tls=False)
    sender, _ = build_sender(make_settings(**server.settings(mail_username="app", mail_password="s3cret-pw")))
    with caplog.at_level(logging.INFO, "mail_gateway.delivery"):
        result = sender.send_email(message(body="very private body text"))
    sender.close()
    [record] = [r for r in caplog.records if r.name == "mail_gateway.delivery"]
    assert record.delivery["message_id"] == result.message_id and record.delivery["via"] == "library"
    assert (record.delivery["outcome"], record.delivery["smtp_code"], record.delivery["attempts"]) == (
        "accepted", 250, 2)
    assert record.delivery["upstream"] == f"{HOST}:{server.port}" and record.delivery["recipients"] == 2
    assert record.delivery["duration_ms"] >= 0
    line = record.getMessage()
    assert f"message_id={result.message_id}" in line and "outcome=accepted" in line
    assert "private body" not in line and "s3cret-pw" not in line


def test_a_bounce_with_the_null_sender_is_relayed_as_mail_from_empty(smtp_server, make_settings) -> None:
    from mail_gateway.mail.rendering import render_raw

    backend = create_backend(make_settings(**smtp_server.settings()))
    raw = b"From: MAILER-DAEMON@example.com\r\nSubject: Undelivered\r\n\r\nbounce\r\n"
    for sender in ("", "<>"):
        result = backend.deliver(render_raw(sender, ["friend@example.com"], raw))
        assert result.accepted
    assert [m.mail_from for m in smtp_server.messages] == ["<>", "<>"]
