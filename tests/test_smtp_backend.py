"""The smtp backend against real aiosmtpd servers that refuse, stall, disconnect, or demand TLS/AUTH."""

from __future__ import annotations

import ssl

import pytest
import trustme
from aiosmtpd.smtp import AuthResult
from flask_mailman import EmailMultiAlternatives
from smtp_server import HOST, FaultHandler, free_port

from backends import (
    DeliveryOutcomeUnknownError,
    PermanentDeliveryError,
    RecipientsRefusedError,
    TransientDeliveryError,
    create_backend,
)


def message(to=("a@example.com", "b@example.com")) -> EmailMultiAlternatives:
    return EmailMultiAlternatives("Hi", "Body", "app@example.com", list(to))


@pytest.fixture
def backend_for(make_settings):
    def build(server, **overrides):
        return create_backend(make_settings(**server.settings(**overrides)))

    return build


def test_a_partly_refused_message_is_accepted_for_the_others(smtp_server_factory, backend_for) -> None:
    server = smtp_server_factory(FaultHandler(rcpt_replies={"b@example.com": "550 5.1.1 no such user"}))
    [result] = backend_for(server).send_messages([message()])
    assert [(r.email, r.status, r.code, r.reason) for r in result.recipients] == [
        ("a@example.com", "accepted", None, None),
        ("b@example.com", "rejected", 550, "5.1.1 no such user"),
    ]
    assert [m.rcpt_tos for m in server.messages] == [["a@example.com"]]


def test_every_recipient_refused_permanently(smtp_server_factory, backend_for) -> None:
    server = smtp_server_factory(FaultHandler(default_rcpt_reply="550 5.1.1 no such user"))
    with pytest.raises(RecipientsRefusedError) as caught:
        backend_for(server).send_messages([message()])
    assert [(r.status, r.code) for r in caught.value.recipients] == [("rejected", 550), ("rejected", 550)]
    assert server.messages == []


def test_every_recipient_deferred_is_transient(smtp_server_factory, backend_for) -> None:
    server = smtp_server_factory(FaultHandler(default_rcpt_reply="451 4.3.0 try later"))
    with pytest.raises(TransientDeliveryError) as caught:
        backend_for(server).send_messages([message()])
    assert {r.status for r in caught.value.recipients} == {"deferred"}


@pytest.mark.parametrize(
    ("handler", "error", "code"),
    [
        (FaultHandler(data_reply="554 5.6.0 content rejected"), PermanentDeliveryError, 554),
        (FaultHandler(data_reply="451 4.3.0 try later"), TransientDeliveryError, 451),
        (FaultHandler(mail_reply="553 5.7.1 sender not allowed"), PermanentDeliveryError, 553),
        (FaultHandler(mail_reply="421 4.7.0 closing"), TransientDeliveryError, 421),
    ],
    ids=["554-at-data", "451-at-data", "553-at-mail", "421-at-mail"],
)
def test_server_replies_map_to_transient_or_permanent(smtp_server_factory, backend_for, handler, error, code):
    server = smtp_server_factory(handler)
    with pytest.raises(error) as caught:
        backend_for(server).send_messages([message()])
    assert caught.value.smtp_code == code
    assert caught.value.upstream == f"{HOST}:{server.port}"
    assert not isinstance(caught.value, RecipientsRefusedError)


def test_lost_reply_after_the_final_dot_is_unknown_not_failed(smtp_server_factory, backend_for) -> None:
    server = smtp_server_factory(FaultHandler(disconnect_after_data=True))
    with pytest.raises(DeliveryOutcomeUnknownError) as caught:
        backend_for(server).send_messages([message()])
    assert len(server.messages) == 1  # the server did get it: retrying would have sent it twice
    assert caught.value.message_id is not None


def test_a_silent_server_times_out(smtp_server_factory, backend_for) -> None:
    server = smtp_server_factory(FaultHandler(stall_at="RCPT"))
    with pytest.raises(TransientDeliveryError, match="before the message was sent"):
        backend_for(server, mail_timeout=0.3).send_messages([message()])


def test_a_server_silent_after_the_data_is_unknown(smtp_server_factory, backend_for) -> None:
    server = smtp_server_factory(FaultHandler(stall_at="DATA"))
    with pytest.raises(DeliveryOutcomeUnknownError):
        backend_for(server, mail_timeout=0.3).send_messages([message()])


def test_connection_refused_is_transient(make_settings) -> None:
    backend = create_backend(make_settings(mail_backend="smtp", mail_server=HOST, mail_port=free_port()))
    with pytest.raises(TransientDeliveryError, match="could not connect"):
        backend.send_messages([message()])


def test_one_connection_serves_a_batch_and_a_with_block(smtp_server, backend_for) -> None:
    backend = backend_for(smtp_server)
    backend.send_messages([message(), message()])
    with backend:
        backend.send_messages([message()])
        backend.send_messages([message()])
    peers = [m.peer for m in smtp_server.messages]
    assert len(peers) == 4
    assert peers[0] == peers[1] and peers[2] == peers[3] and peers[0] != peers[2]


def test_a_batch_continues_on_a_new_connection_after_one_is_lost(smtp_server_factory, backend_for) -> None:
    handler = FaultHandler(disconnect_after_data=True)
    server = smtp_server_factory(handler)
    backend = backend_for(server)
    with backend:
        with pytest.raises(DeliveryOutcomeUnknownError):
            backend.send_messages([message()])
        handler.disconnect_after_data = False
        [result] = backend.send_messages([message()])
    assert len(server.messages) == 2 and server.messages[0].peer != server.messages[1].peer
    assert result.accepted


def test_starttls_required_but_not_offered_fails_closed(smtp_server, backend_for) -> None:
    with pytest.raises(PermanentDeliveryError, match="STARTTLS"):
        backend_for(smtp_server, mail_use_tls=True).send_messages([message()])
    assert smtp_server.messages == []


@pytest.fixture(scope="module")
def untrusted_ca() -> trustme.CA:
    return trustme.CA()


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST).configure_cert(context)
    return context


def test_starttls_with_an_untrusted_certificate_is_refused(smtp_server_factory, backend_for, untrusted_ca) -> None:
    server = smtp_server_factory(FaultHandler(), tls_context=_server_context(untrusted_ca))
    with pytest.raises(PermanentDeliveryError, match="certificate"):
        backend_for(server, mail_use_tls=True).send_messages([message()])
    assert server.messages == []


def test_implicit_tls_with_an_untrusted_certificate_is_refused(smtp_server_factory, backend_for, untrusted_ca):
    server = smtp_server_factory(FaultHandler(), ssl_context=_server_context(untrusted_ca))
    with pytest.raises(PermanentDeliveryError, match="certificate"):
        backend_for(server, mail_use_ssl=True).send_messages([message()])
    assert server.messages == []


class Authenticator:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        self.seen.append((auth_data.login.decode(), auth_data.password.decode()))
        ok = auth_data.password == b"s3cret-pw"
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


def test_login_is_used_when_a_username_is_set(smtp_server_factory, backend_for) -> None:
    authenticator = Authenticator()
    server = smtp_server_factory(FaultHandler(), authenticator=authenticator, auth_require_tls=False)
    backend_for(server, mail_username="app", mail_password="s3cret-pw").send_messages([message()])
    assert authenticator.seen == [("app", "s3cret-pw")]
    assert len(server.messages) == 1


def test_a_refused_login_names_the_user_and_never_the_password(smtp_server_factory, backend_for) -> None:
    server = smtp_server_factory(FaultHandler(), authenticator=Authenticator(), auth_require_tls=False)
    with pytest.raises(PermanentDeliveryError) as caught:
        backend_for(server, mail_username="app", mail_password="wrong-pw").send_messages([message()])
    assert caught.value.smtp_code == 535
    assert "'app'" in str(caught.value)
    assert "wrong-pw" not in str(caught.value) and "wrong-pw" not in repr(caught.value)
    assert server.messages == []
