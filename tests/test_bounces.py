"""Bounces after acceptance: VERP envelope senders, and DSNs received by the ingress at the bounce domain.

A real upstream (aiosmtpd) takes the message, so the gateway sees it delivered; the DSN arrives later over SMTP
at ``bounces+<id>@GATEWAY_BOUNCE_DOMAIN``, as a remote server would send it. The DSN samples in ``dsn_samples/``
follow the documented formats of Postfix, Exim, Gmail and Microsoft.
"""

from __future__ import annotations

import smtplib
import time
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from api_helpers import deeply_nested
from pydantic import SecretStr
from queue_support import MESSAGE, Queued, queued_app
from smtp_server import HOST

from mail_gateway import MailGateway, create_app
from mail_gateway.ingress.server import IngressServer
from mail_gateway.mail.dsn import read_returned
from mail_gateway.mail.verp import direct_token
from mail_gateway.store import suppressions
from mail_gateway.store.database import Store

SAMPLES = Path(__file__).parent / "dsn_samples"
DOMAIN = "bounce.example.com"
PERMANENT = {"postfix_failed.eml": "5.1.1", "exim_failed.eml": "5.0.0", "gmail_failed.eml": "5.1.1",
             "microsoft_failed.eml": "5.1.10"}


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes().replace(b"\n", b"\r\n")


@pytest.mark.parametrize("name", sorted(PERMANENT))
def test_each_mta_dsn_reads_as_a_permanent_failure_of_its_recipient(name: str) -> None:
    returned = read_returned(sample(name))
    assert returned.kind == "dsn"
    [status] = returned.recipients
    assert (status.recipient, status.action, status.status) == ("gone@example.com", "failed", PERMANENT[name])
    assert status.permanent and status.diagnostic.startswith("550")


@pytest.mark.parametrize("name", sorted(PERMANENT))
def test_a_global_dsn_reads_as_its_delivery_status_twin(name: str) -> None:
    # RFC 6533's message/global-delivery-status: the parser reads its first block as a message, the others as that
    # message's body, and no recipient was found ("unknown").
    data = sample(name)
    assert b"message/delivery-status" in data
    returned = read_returned(data.replace(b"message/delivery-status", b"message/global-delivery-status"))
    assert returned == read_returned(data) and returned.kind == "dsn"


@pytest.mark.parametrize(("name", "kind"), [("postfix_delayed.eml", "dsn"), ("vacation_autoreply.eml", "autoreply"),
                                            ("vacation_subject_only.eml", "autoreply"), ("plain_reply.eml", "unknown")])
def test_delays_auto_replies_and_other_mail_are_no_permanent_failure(name: str, kind: str) -> None:
    returned = read_returned(sample(name))
    assert returned.kind == kind
    assert not any(status.permanent for status in returned.recipients)


def started(queued_apps: list[Queued], make_settings: Any, smtp_server: Any, **values: Any) -> Queued:
    queued = queued_app(make_settings, **smtp_server.queued_settings(), gateway_bounce_domain=DOMAIN, **values)
    queued_apps.append(queued)
    return queued


def delivered(queued: Queued, to: str) -> str:
    answer = queued.send({**MESSAGE, "to": [to]})
    queued.wait_status(answer["id"], "delivered")
    return answer["id"]


def bounce(queued: Queued, rcpt: str, data: bytes, **ingress: Any) -> tuple[int, bytes]:
    """``data`` sent as a remote server sends a DSN: null sender, no AUTH, to ``rcpt``."""
    state = MailGateway.state(queued.app)
    settings = state.settings.model_copy(update=ingress) if ingress else state.settings
    with IngressServer(settings, state.sender, port=0) as server, \
            smtplib.SMTP(HOST, server.port, timeout=15) as client:
        client.ehlo("mx.example.net")
        client.mail("<>")
        code, reply = client.rcpt(rcpt)
        assert code == 250, reply
        return client.data(data)


def suppressed(queued: Queued, *addresses: str) -> set[str]:
    return MailGateway.state(queued.app).store.read(lambda conn: suppressions.suppressed(conn, addresses))


def test_a_queued_message_leaves_with_its_verp_sender_and_its_from_unchanged(queued_apps, make_settings,
                                                                              smtp_server) -> None:
    queued = started(queued_apps, make_settings, smtp_server)
    message_id = delivered(queued, "friend@example.com")
    [received] = smtp_server.messages
    assert received.mail_from == f"bounces+{message_id}@{DOMAIN}"
    assert message_from_bytes(received.data)["From"] == "app@example.com"


def test_a_direct_message_leaves_with_a_verp_sender_its_message_id_names(make_settings, smtp_server) -> None:
    app = create_app(make_settings(**smtp_server.settings(), gateway_bounce_domain=DOMAIN))
    response = app.test_client().post("/v1/messages", json=MESSAGE)
    assert response.status_code == 202, response.get_data(as_text=True)
    [received] = smtp_server.messages
    assert received.mail_from == f"bounces+{direct_token(response.get_json()['message_id'])}@{DOMAIN}"
    assert message_from_bytes(received.data)["From"] == "app@example.com"
    MailGateway.state(app).sender.close()


@pytest.mark.parametrize("name", sorted(PERMANENT))
def test_a_dsn_to_the_verp_address_marks_the_message_bounced_and_suppresses(queued_apps, make_settings, smtp_server,
                                                                            name: str) -> None:
    queued = started(queued_apps, make_settings, smtp_server)
    message_id = delivered(queued, "gone@example.com")
    code, reply = bounce(queued, f"bounces+{message_id}@{DOMAIN}", sample(name))
    assert code == 250, reply
    status = queued.status(message_id)
    assert status["status"] == "bounced"
    assert status["recipients"][0]["status"] == "bounced"
    [event] = [e for e in status["events"] if e["type"] == "bounced"]
    assert event["recipient"] == "gone@example.com" and event["text"].startswith("550")
    assert suppressed(queued, "gone@example.com", "friend@example.com") == {"gone@example.com"}


def test_a_delayed_dsn_and_an_auto_reply_suppress_no_one(queued_apps, make_settings, smtp_server) -> None:
    queued = started(queued_apps, make_settings, smtp_server)
    message_id = delivered(queued, "slow@example.com")
    address = f"bounces+{message_id}@{DOMAIN}"
    for name in ("postfix_delayed.eml", "vacation_autoreply.eml", "plain_reply.eml"):
        code, reply = bounce(queued, address, sample(name))
        assert code == 250, reply
    status = queued.status(message_id)
    assert [e["type"] for e in status["events"] if e["type"] in ("delayed", "autoresponded", "unknown")] == \
        ["delayed", "autoresponded", "unknown"]
    assert status["status"] == "delivered"
    assert suppressed(queued, "slow@example.com", "friend@example.com") == set()


def test_a_report_holding_a_nul_is_recorded_with_it_escaped_on_both_stores(queued_apps, make_settings, smtp_server,
                                                                           store_url) -> None:
    # PostgreSQL keeps no NUL in text: the report's record failed whole, answered 451, and the reporting server
    # retried it for days.
    queued = started(queued_apps, make_settings, smtp_server, gateway_store_url=store_url)
    message_id = delivered(queued, "gone@example.com")
    address = f"bounces+{message_id}@{DOMAIN}"
    away = b"From: friend@example.com\r\nSubject: Out of\x00office\r\nAuto-Submitted: auto-replied\r\n\r\nAway.\r\n"
    assert bounce(queued, address, away)[0] == 250
    report = sample("postfix_failed.eml").replace(b"Recipient address", b"Recipient\x00address")
    assert bounce(queued, address, report)[0] == 250
    texts = {e["type"]: e["text"] for e in queued.status(message_id)["events"]}
    assert texts["autoresponded"] == "Out of\\x00office" and "Recipient\\x00address" in texts["bounced"]
    assert suppressed(queued, "gone@example.com") == {"gone@example.com"}


def test_a_report_nested_over_100_deep_is_refused_before_it_is_read(queued_apps, make_settings, smtp_server) -> None:
    queued = started(queued_apps, make_settings, smtp_server)
    message_id = delivered(queued, "friend@example.com")
    address = f"bounces+{message_id}@{DOMAIN}"
    code, reply = bounce(queued, address, deeply_nested(101))
    assert code == 554 and reply.startswith(b"5.6.0 The message cannot be received: its MIME parts nest more than 100")
    assert bounce(queued, address, deeply_nested(100))[0] == 250
    assert [e["type"] for e in queued.status(message_id)["events"] if e["type"] == "unknown"] == ["unknown"]


def test_a_report_whose_parts_cannot_be_read_is_recorded_by_its_header(queued_apps, make_settings, smtp_server) -> None:
    # A boundary given both whole and in numbered pieces (RFC 2231) made the standard library's parser raise
    # TypeError: the report was answered with an error, and its sender would have retried it for days. Its header
    # fields alone say it was sent automatically (Auto-Submitted); no status can be read, so no one is suppressed.
    queued = started(queued_apps, make_settings, smtp_server)
    message_id = delivered(queued, "gone@example.com")
    report = sample("postfix_failed.eml").replace(b'boundary="', b'boundary*=b; boundary*0="', 1)
    assert report != sample("postfix_failed.eml")
    assert bounce(queued, f"bounces+{message_id}@{DOMAIN}", report) == (250, b"2.0.0 OK: autoreply recorded")
    status = queued.status(message_id)
    assert [e["type"] for e in status["events"] if e["type"] in ("autoresponded", "bounced")] == ["autoresponded"]
    assert status["status"] == "delivered" and suppressed(queued, "gone@example.com") == set()


def test_the_bounce_domain_needs_no_auth_but_relaying_still_does(queued_apps, make_settings, smtp_server) -> None:
    queued = started(queued_apps, make_settings, smtp_server)
    message_id = delivered(queued, "gone@example.com")
    auth = {"gateway_smtp_users": SecretStr("app:secret-pw"), "gateway_smtp_allow_insecure_auth": True}
    code, reply = bounce(queued, f"bounces+{message_id}@{DOMAIN}", sample("postfix_failed.eml"), **auth)
    assert code == 250, reply
    state = MailGateway.state(queued.app)
    settings = state.settings.model_copy(update=auth)
    with IngressServer(settings, state.sender, port=0) as server, \
            smtplib.SMTP(HOST, server.port, timeout=15) as client:
        client.ehlo("client.example.net")
        assert client.mail("app@example.com")[0] == 250
        code, reply = client.rcpt("friend@example.com")
        assert code == 530, reply
    assert len(smtp_server.messages) == 1  # only the message sent over HTTP reached the upstream


def test_a_dsn_about_an_address_the_message_never_had_suppresses_no_one(queued_apps, make_settings,
                                                                         smtp_server) -> None:
    queued = started(queued_apps, make_settings, smtp_server)
    message_id = delivered(queued, "friend@example.com")
    # Anyone may write to the bounce address: a forged DSN must not suppress an address of its choosing.
    code, reply = bounce(queued, f"bounces+{message_id}@{DOMAIN}", sample("postfix_failed.eml"))
    assert code == 250, reply
    assert [e["recipient"] for e in queued.status(message_id)["events"] if e["type"] == "bounced"] == \
        ["gone@example.com"]
    assert queued.status(message_id)["status"] == "delivered"
    assert suppressed(queued, "gone@example.com") == set()


def test_a_dsn_for_a_direct_message_suppresses_its_recipient(ingress_factory, make_settings, smtp_server,
                                                             tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/direct.sqlite3"
    ingress = ingress_factory(**smtp_server.settings(), gateway_bounce_domain=DOMAIN, gateway_store_url=url)
    with ingress.client() as client:
        client.ehlo("mx.example.net")
        client.mail("<>")
        assert client.rcpt(f"bounces+{direct_token('<hello-1@example.com>')}@{DOMAIN}")[0] == 250
        code, reply = client.data(sample("gmail_failed.eml"))
    assert code == 250, reply
    store = Store(url)
    assert store.read(lambda conn: suppressions.suppressed(conn, ["gone@example.com"])) == {"gone@example.com"}


@pytest.mark.parametrize("local", ["bounces", "bounces+not-a-token!", "bounces+m0", "bounces+m" + "0" * 20])
def test_a_queued_gateway_refuses_reports_to_addresses_its_messages_never_leave_with(queued_apps, make_settings,
                                                                                   smtp_server, local) -> None:
    # Each was accepted and trusted: a report to it suppressed whatever address it named.
    queued = started(queued_apps, make_settings, smtp_server)
    state = MailGateway.state(queued.app)
    with IngressServer(state.settings, state.sender, port=0) as server, \
            smtplib.SMTP(HOST, server.port, timeout=15) as client:
        client.ehlo("mx.example.net")
        client.mail("<>")
        code, reply = client.rcpt(f"{local}@{DOMAIN}")
    assert (code, reply[:5]) == (550, b"5.1.1") and b"no message of this gateway" in reply
    assert suppressed(queued, "gone@example.com") == set()


@pytest.mark.parametrize(("local", "code"), [("bounces", 550), ("bounces+m0", 550), ("bounces+q1", 250),
                                             ("bounces+m" + "0" * 20, 250)])
def test_a_direct_gateway_takes_reports_only_to_its_token_forms(ingress_factory, make_settings, smtp_server,
                                                                tmp_path, local, code) -> None:
    ingress = ingress_factory(**smtp_server.settings(), gateway_bounce_domain=DOMAIN,
                              gateway_store_url=f"sqlite:///{tmp_path}/direct.sqlite3")
    with ingress.client() as client:
        client.ehlo("mx.example.net")
        client.mail("<>")
        assert client.rcpt(f"{local}@{DOMAIN}")[0] == code


def test_a_dsn_hard_bounce_expires_as_gateway_suppression_expiry_says(queued_apps, make_settings, smtp_server) -> None:
    queued = started(queued_apps, make_settings, smtp_server, gateway_suppression_expiry=3600)
    message_id = delivered(queued, "gone@example.com")
    before = time.time()
    code, reply = bounce(queued, f"bounces+{message_id}@{DOMAIN}", sample(sorted(PERMANENT)[0]))
    assert code == 250, reply
    entry = MailGateway.state(queued.app).store.read(lambda conn: suppressions.get(conn, "gone@example.com"))
    assert entry is not None and entry.expires_at is not None
    assert before + 3600 <= entry.expires_at <= time.time() + 3600
