"""A message with the null sender (a bounce, a DSN, an auto-reply) keeps it when GATEWAY_BOUNCE_DOMAIN gives
every other message a VERP sender: RFC 5321 4.5.5, so that mail about mail cannot bounce back and forth."""

from __future__ import annotations

import smtplib
from typing import Any

from ingress_support import message_bytes, wait_until
from queue_support import queued_app
from smtp_server import HOST

from mail_gateway import MailGateway
from mail_gateway.ingress.server import IngressServer

DOMAIN = "bounce.example.com"
NULL = ("<>", "")  # how an aiosmtpd upstream may record MAIL FROM:<>


def send_bounce(port: int) -> None:
    with smtplib.SMTP(HOST, port, timeout=15) as client:
        client.ehlo("mx.example.net")
        assert client.mail("<>")[0] == 250
        assert client.rcpt("friend@example.com")[0] == 250
        code, reply = client.data(message_bytes())
        assert code == 250, reply
        assert client.mail("app@example.com")[0] == 250  # an ordinary message still gets its VERP sender
        assert client.rcpt("friend@example.com")[0] == 250
        assert client.data(message_bytes(message_id="<second@example.com>"))[0] == 250


def test_direct_delivery_keeps_the_null_sender(ingress_factory, smtp_server, tmp_path) -> None:
    ingress = ingress_factory(**smtp_server.settings(), gateway_bounce_domain=DOMAIN,
                              gateway_store_url=f"sqlite:///{tmp_path}/direct.sqlite3")
    send_bounce(ingress.port)
    first, second = smtp_server.messages
    assert first.mail_from in NULL
    assert second.mail_from.startswith("bounces+") and second.mail_from.endswith("@" + DOMAIN)


def test_queued_delivery_keeps_the_null_sender(queued_apps: list[Any], make_settings, smtp_server) -> None:
    queued = queued_app(make_settings, **smtp_server.queued_settings(), gateway_bounce_domain=DOMAIN)
    queued_apps.append(queued)
    state = MailGateway.state(queued.app)
    with IngressServer(state.settings, state.sender, port=0) as server:
        send_bounce(server.port)
        wait_until(lambda: len(smtp_server.messages) == 2, "both messages are delivered")
    by_id = {m.data.split(b"Message-ID: ")[1].split(b"\r\n")[0]: m.mail_from for m in smtp_server.messages}
    assert by_id[b"<ingress-test@example.com>"] in NULL
    assert by_id[b"<second@example.com>"].startswith("bounces+")
