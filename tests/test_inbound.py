"""Inbound routes: mail the ingress receives for GATEWAY_INBOUND_ROUTES, posted to a real webhook receiver that
verifies each signature with ``standardwebhooks``; its raw bytes from the status API."""

from __future__ import annotations

import base64
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from api_helpers import deeply_nested
from ingress_support import wait_until
from queue_support import Queued, queued_app
from smtp_server import HOST
from test_queue_webhooks import SECRET, Receiver

from mail_gateway import MailGateway
from mail_gateway.errors import ConfigurationError
from mail_gateway.ingress.server import IngressServer
from mail_gateway.settings import load_settings

PDF = b"%PDF-1.4 a small document\x00\x01\x02"
PNG = b"\x89PNG\r\n\x1a\n an inline logo"


def serving() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()
    found.server.server_close()


receiver = pytest.fixture(serving, name="receiver")
domain_receiver = pytest.fixture(serving, name="domain_receiver")


def started(queued_apps: list[Queued], make_settings: Any, receiver: Receiver, smtp_server: Any,
            domain_receiver: Receiver | None = None, **values: Any) -> Queued:
    routes = f"support@example.com={receiver.url}, *@in.example.com={(domain_receiver or receiver).url}"
    queued = queued_app(make_settings, **smtp_server.queued_settings(), gateway_inbound_routes=routes,
                        gateway_webhook_secret=SECRET, gateway_webhook_backoff_min=0.05, **values)
    queued_apps.append(queued)
    return queued


def customer_mail() -> bytes:
    message = EmailMessage()
    message["From"] = "Customer <customer@example.net>"
    message["To"] = "support@example.com"
    message["Cc"] = "boss@example.net"
    message["Subject"] = "Order 42 is broken"
    message["X-Spam-Status"] = "No, score=-0.1"
    message.set_content("The order arrived broken.\n")
    message.add_alternative('<p>The order arrived broken. <img src="cid:logo@example.net"></p>\n', subtype="html")
    message.get_payload()[1].add_related(PNG, maintype="image", subtype="png", cid="<logo@example.net>")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="invoice.pdf")
    return message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_inbound_mail_reaches_its_route_signed_with_attachments(queued_apps, make_settings, receiver,
                                                                smtp_server) -> None:
    queued = started(queued_apps, make_settings, receiver, smtp_server)
    state = MailGateway.state(queued.app)
    data = customer_mail()
    with IngressServer(state.settings, state.sender, port=0) as server, \
            smtplib.SMTP(HOST, server.port, timeout=15) as client:
        refused = client.sendmail("customer@example.net", ["support@example.com"], data)
    assert refused == {}
    wait_until(lambda: len(receiver.verified) >= 1, "the inbound webhook arrived, signature verified")
    [event] = receiver.verified
    assert event["type"] == "message.inbound"
    found = event["data"]
    assert found["event_type"] == "inbound"
    assert (found["from"], found["to"], found["cc"], found["subject"]) == (
        "Customer <customer@example.net>", ["support@example.com"], ["boss@example.net"], "Order 42 is broken")
    assert found["text"].splitlines() == ["The order arrived broken."] and "cid:logo@example.net" in found["html"]
    assert found["spam"] == {"X-Spam-Status": "No, score=-0.1"}
    assert found["envelope"] == {"mail_from": "customer@example.net", "rcpt_to": ["support@example.com"]}
    files = {a["content_type"]: a for a in found["attachments"]}
    assert base64.b64decode(files["application/pdf"]["content"]) == PDF
    assert files["application/pdf"]["filename"] == "invoice.pdf"
    assert files["image/png"]["content_id"] == "logo@example.net"
    assert base64.b64decode(files["image/png"]["content"]) == PNG
    raw = queued.client.get(found["raw_url"])
    assert raw.status_code == 200 and raw.mimetype == "message/rfc822"
    assert raw.data == data
    assert smtp_server.messages == []  # received, not relayed


def test_an_envelope_address_holding_a_nul_is_refused_at_mail_and_rcpt_on_both_stores(queued_apps, make_settings,
                                                                                         receiver, smtp_server,
                                                                                         store_url) -> None:
    # PostgreSQL keeps no NUL in text: the sender was taken, the message answered 451 after DATA and retried for ever.
    queued = started(queued_apps, make_settings, receiver, smtp_server, gateway_store_url=store_url)
    state = MailGateway.state(queued.app)
    with IngressServer(state.settings, state.sender, port=0) as server, \
            smtplib.SMTP(HOST, server.port, timeout=15) as client:
        client.ehlo("mx.example.net")
        code, text = client.docmd("MAIL FROM:<cust\x00omer@example.net>")
        assert code == 553 and text.startswith(b"5.1.7 ") and b"U+0000" in text
        assert client.mail("customer@example.net")[0] == 250
        code, text = client.docmd("RCPT TO:<supp\x00ort@example.com>")
        assert code == 553 and text.startswith(b"5.1.3 ") and b"U+0000" in text
        assert client.rcpt("support@example.com")[0] == 250
        assert client.data(b"Subject: hi\r\n\r\nhello\r\n")[0] == 250
    wait_until(lambda: len(receiver.verified) >= 1, "the inbound webhook arrived")
    assert receiver.verified[0]["data"]["envelope"]["mail_from"] == "customer@example.net"


def test_inbound_mail_nested_over_100_deep_is_refused_before_it_is_read_or_kept(queued_apps, make_settings,
                                                                                 receiver, smtp_server) -> None:
    # Taken (250) and kept before, or, nested deeper than the standard library's parser reads, answered 451, which
    # the sending server retries for days.
    queued = started(queued_apps, make_settings, receiver, smtp_server)
    state = MailGateway.state(queued.app)
    with IngressServer(state.settings, state.sender, port=0) as server, \
            smtplib.SMTP(HOST, server.port, timeout=15) as client:
        with pytest.raises(smtplib.SMTPDataError) as caught:
            client.sendmail("customer@example.net", ["support@example.com"], deeply_nested(101, "message"))
        assert client.sendmail("customer@example.net", ["support@example.com"], deeply_nested(100, "message")) == {}
    reply = caught.value.smtp_error
    assert caught.value.smtp_code == 554 and b"nest MIME parts at most 100 deep" in reply
    assert reply.startswith(b"5.6.0 The message cannot be received: its MIME parts nest more than 100 deep")
    wait_until(lambda: len(receiver.verified) >= 1, "the inbound webhook of the message 100 deep arrived")
    assert len(receiver.verified) == 1 and receiver.verified[0]["data"]["subject"] == "deep"


def test_inbound_mail_with_comments_nested_past_the_parsers_limit_is_received(queued_apps, make_settings,
                                                                            receiver, smtp_server) -> None:
    # A From of a thousand "(" made the address parser recurse past the interpreter's limit while the message was
    # read: answered 451 after DATA, which the sending server retries for days.
    queued = started(queued_apps, make_settings, receiver, smtp_server)
    state = MailGateway.state(queued.app)
    data = (b"From: " + b"(" * 900 + b"\r\n " + b"(" * 900 + b"\r\nTo: support@example.com\r\n"
            b"Subject: nested\r\n\r\nHello\r\n")
    with IngressServer(state.settings, state.sender, port=0) as server, \
            smtplib.SMTP(HOST, server.port, timeout=15) as client:
        assert client.sendmail("customer@example.net", ["support@example.com"], data) == {}
    wait_until(lambda: len(receiver.verified) >= 1, "the inbound webhook arrived")
    found = receiver.verified[0]["data"]
    assert (found["subject"], found["to"], found["from"]) == ("nested", ["support@example.com"], "")


def test_a_domain_route_takes_every_address_and_each_route_its_own_url(queued_apps, make_settings, receiver,
                                                                       domain_receiver, smtp_server) -> None:
    queued = started(queued_apps, make_settings, receiver, smtp_server, domain_receiver)
    state = MailGateway.state(queued.app)
    with IngressServer(state.settings, state.sender, port=0) as server, \
            smtplib.SMTP(HOST, server.port, timeout=15) as client:
        client.sendmail("customer@example.net", ["anyone@IN.example.com"], b"Subject: hi\r\n\r\nhello\r\n")
    wait_until(lambda: len(domain_receiver.verified) >= 1, "the domain route's webhook arrived")
    assert domain_receiver.verified[0]["data"]["envelope"]["rcpt_to"] == ["anyone@IN.example.com"]
    assert receiver.verified == []


def test_unknown_recipients_of_an_inbound_domain_are_refused_at_rcpt(queued_apps, make_settings, receiver,
                                                                      smtp_server) -> None:
    queued = started(queued_apps, make_settings, receiver, smtp_server)
    state = MailGateway.state(queued.app)
    with IngressServer(state.settings, state.sender, port=0) as server, \
            smtplib.SMTP(HOST, server.port, timeout=15) as client:
        client.ehlo("mx.example.net")
        client.mail("customer@example.net")
        code, reply = client.rcpt("nobody@example.com")
    assert (code, reply) == (550, b"5.1.1 No such recipient here")


def test_inbound_routes_need_queued_delivery_and_a_webhook_secret() -> None:
    with pytest.raises(ConfigurationError, match="GATEWAY_INBOUND_ROUTES needs queued delivery; set "
                                                 "GATEWAY_DELIVERY=queued"):
        load_settings(gateway_inbound_routes="support@example.com=https://hooks.example.com/in")
    with pytest.raises(ConfigurationError, match="set GATEWAY_WEBHOOK_SECRET"):
        load_settings(gateway_delivery="queued", gateway_inbound_routes="support@example.com=https://h.example/in")
