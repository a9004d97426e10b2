"""Webhooks to a real HTTP receiver that verifies each signature with ``standardwebhooks``; the SMTP ingress in
queued mode."""

from __future__ import annotations

import base64
import smtplib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ingress_support import wait_until
from queue_support import MESSAGE, queued_app
from smtp_server import HOST, FaultHandler
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from mail_gateway import MailGateway
from mail_gateway.ingress.server import IngressServer

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Receiver:
    """Verifies every delivery; answers what ``answers`` says next (200 once it runs out)."""

    def __init__(self) -> None:
        self.verified: list[dict] = []
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.ids: list[str] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((body, dict(self.headers)))
                receiver.verified.append(Webhook(SECRET).verify(body, dict(self.headers)))
                receiver.ids.append(self.headers["webhook-id"])
                self.send_response(receiver.answers.pop(0) if receiver.answers else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://{HOST}:{self.server.server_address[1]}/hooks"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()
    found.server.server_close()


def test_each_outcome_is_a_signed_webhook_retried_with_the_same_id(queued_apps, make_settings, receiver,
                                                                     smtp_server_factory) -> None:
    server = smtp_server_factory(FaultHandler(rcpt_replies={"gone@example.com": "550 5.1.1 no such user"}))
    receiver.answers = [500]  # the first delivery fails once, then is retried
    queued = queued_app(make_settings, **server.queued_settings(), gateway_webhook_url=receiver.url,
                        gateway_webhook_secret=SECRET, gateway_webhook_backoff_min=0.05,
                        gateway_api_keys="shop:key-shop")
    queued_apps.append(queued)
    # Tags and metadata come back in every event, as in django-anymail's and Postmark's: which order's receipt
    # bounced, without keeping the gateway's ids. A non-ASCII value travels RFC 2047-encoded and is read back.
    labels = {"tags": ["receipt", "shop"], "metadata": {"order_id": "1234", "customer": "Jürgen Groß"}}
    answer = queued.send({**MESSAGE, "to": ["friend@example.com", "gone@example.com"], **labels},
                         Authorization="Bearer key-shop")
    wait_until(lambda: len(receiver.verified) >= 3, "two events, one of them retried")
    events = {(e["type"], e["data"]["recipient"]) for e in receiver.verified}
    assert events == {("message.delivered", "friend@example.com"), ("message.bounced", "gone@example.com")}
    assert len(receiver.ids) == 3 and len(set(receiver.ids)) == 2  # the retry kept its webhook-id
    bounced = next(e for e in receiver.verified if e["type"] == "message.bounced")
    event_id = bounced["data"].pop("event_id")
    assert bounced["data"] == {"id": answer["id"], "message_id": answer["message_id"], "recipient": "gone@example.com",
                               "code": 550, "reason": "5.1.1 no such user", "attempts": 1, "api_key": "shop",
                               # django-anymail's normalized vocabulary, beside the gateway's own fields
                               "event_type": "bounced", "reject_reason": "bounced",
                               "mta_response": "550 5.1.1 no such user", **labels}
    assert all({**e["data"], **labels} == e["data"] for e in receiver.verified)
    shown = queued.client.get(f"/v1/messages/{answer['id']}", headers={"Authorization": "Bearer key-shop"})
    assert {key: value for key, value in shown.get_json().items() if key in labels} == labels
    assert event_id in receiver.ids  # one id per event, kept on every retry: what de-duplicates it
    assert bounced["timestamp"].endswith("Z")


def test_while_the_secret_is_replaced_each_event_is_signed_by_both_and_verifies_with_either(
        queued_apps, make_settings, receiver, smtp_server) -> None:
    new = "whsec_" + base64.b64encode(b"the endpoint's next key, 32 bytes").decode()
    queued = queued_app(make_settings, **smtp_server.queued_settings(), gateway_webhook_url=receiver.url,
                        gateway_webhook_secret=f"{SECRET} {new}")
    queued_apps.append(queued)
    queued.send()
    wait_until(lambda: receiver.received, "the delivered event")
    body, headers = receiver.received[0]
    assert len(headers["webhook-signature"].split(" ")) == 2  # v1,<by the old secret> v1,<by the new one>
    assert Webhook(SECRET).verify(body, headers) == Webhook(new).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"a secret nobody configured").decode()).verify(body, headers)


def test_a_410_stops_sending_to_that_endpoint(queued_apps, make_settings, receiver, smtp_server, caplog) -> None:
    receiver.answers = [410]
    queued = queued_app(make_settings, **smtp_server.queued_settings(), gateway_webhook_url=receiver.url,
                        gateway_webhook_secret=SECRET, gateway_webhook_backoff_min=0.05)
    queued_apps.append(queued)
    queued.wait_status(queued.send()["id"], "delivered")
    wait_until(lambda: "410 Gone" in caplog.text, "the 410 is logged")
    queued.wait_status(queued.send()["id"], "delivered")
    time.sleep(0.5)
    assert len(receiver.verified) == 1  # nothing after the 410


def test_the_ingress_answers_queued_as_id_then_delivers(queued_apps, make_settings, smtp_server) -> None:
    queued = queued_app(make_settings, **smtp_server.queued_settings(), gateway_smtp_port=1025)
    queued_apps.append(queued)
    state = MailGateway.state(queued.app)
    ingress = IngressServer(state.settings, state.sender, port=0).start()
    try:
        with smtplib.SMTP(HOST, ingress.port, timeout=10) as client:
            client.ehlo()
            client.mail("app@example.com")
            client.rcpt("friend@example.com")
            code, reply = client.data(b"Subject: hi\r\n\r\nqueued over SMTP\r\n")
    finally:
        ingress.stop()
    assert code == 250 and reply.decode().startswith("2.0.0 Ok: queued as ")
    queued.wait_status(reply.decode().rsplit(" ", 1)[1], "delivered")
    assert b"queued over SMTP" in smtp_server.messages[0].data
