"""The message pipeline: the ordered steps every message passes between rendered and delivered (or stored).

Real parts only: aiosmtpd upstreams on loopback ports (one announcing 8BITMIME, one not: ``decode_data=True``
and ``enable_SMTPUTF8=False`` make aiosmtpd announce neither), the Flask test client, the SMTP ingress.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import logging
import smtplib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import pytest
from api_helpers import HELLO, outbox
from ingress_support import DEADLINE_SECONDS
from queue_support import queued_app
from smtp_server import HOST, FaultHandler

from mail_gateway import create_app
from mail_gateway.assembly import build_sender
from mail_gateway.errors import ConfigurationError, DeliveryError, SenderNotAllowedError
from mail_gateway.mail.rendering import RenderedMessage, render_raw
from mail_gateway.sending.pipeline import Pipeline, StepContext, TransferEncoding, register_step, unregister_step

TEXT = "Grüße aus Köln — 東京"
SIGNATURE = b"X-Test-Signature: "
BCC = b"From: app@example.com\r\nTo: friend@example.com\r\nBcc: secret@example.com\r\nSubject: x\r\n\r\nhi\r\n"


@dataclass
class Signing:
    """Signs what it gets: a header holding the SHA-256 of the message as it was handed over."""

    name: str = "test-signature"
    signs: bool = True
    signed: list[bytes] = field(default_factory=list)

    def __call__(self, message: RenderedMessage, context: StepContext) -> RenderedMessage:
        data = SIGNATURE + hashlib.sha256(message.data).hexdigest().encode() + b"\r\n" + message.data
        self.signed.append(data)
        return replace(message, data=data)


@dataclass
class Watching:
    """Records each message that reaches it, with its context, and passes it on unchanged."""

    name: str = "test-watch"
    signs: bool = False
    seen: list[tuple[RenderedMessage, StepContext]] = field(default_factory=list)

    def __call__(self, message: RenderedMessage, context: StepContext) -> RenderedMessage:
        self.seen.append((message, context))
        return message


@dataclass
class Refusing:
    """Refuses, as the sender policy does, every message whose subject is ``forbidden``."""

    name: str = "test-refusal"
    signs: bool = False

    def __call__(self, message: RenderedMessage, context: StepContext) -> RenderedMessage | DeliveryError:
        if b"\r\nSubject: forbidden\r\n" not in message.data:
            return message
        return SenderNotAllowedError(f"{context.via} may not send this (test-refusal); change the subject",
                                     field="subject", backend=context.backend, message_id=message.message_id)


@dataclass
class EightBitOptions:
    """Records each transaction's MAIL FROM parameters and the message's bytes as they arrived."""

    received: list[tuple[list[str], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        self.received.append((list(envelope.mail_options), envelope.original_content))
        return "250 2.0.0 OK"


@pytest.fixture
def registered() -> Iterator[Callable]:
    names: list[str] = []

    def register(step):
        register_step(step)
        names.append(step.name)
        return step

    yield register
    for name in names:
        unregister_step(name)


def verified(data: bytes) -> bytes:
    """What the signature covers, after checking that it is the hash of exactly that."""
    line, _, rest = data.partition(b"\r\n")
    assert line.startswith(SIGNATURE), data[:200]
    assert line.removeprefix(SIGNATURE).decode() == hashlib.sha256(rest).hexdigest(), "the signature does not verify"
    return rest


def on_the_wire(data: bytes) -> bytes:
    """``data`` as an upstream receives it: smtplib ends the data with CRLF before the final dot."""
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def raw(client, data: bytes, rcpt_to: list[str] | None = None):
    return client.post("/v1/messages/raw", json={"mail_from": "app@example.com",
                                                 "rcpt_to": rcpt_to or ["friend@example.com"],
                                                 "data": base64.b64encode(data).decode()})


# -- the steps and their order ----------------------------------------------------------------------------

def test_the_built_in_steps_run_in_order_and_registered_steps_after_them(make_settings, registered) -> None:
    plain, _ = build_sender(make_settings(mail_backend="memory"))
    assert plain.pipeline.names == ("strip-bcc", "transfer-encoding")  # no sender policy without its setting
    registered(Watching())
    policed, _ = build_sender(make_settings(mail_backend="memory", gateway_allowed_senders="@example.com"))
    assert policed.pipeline.names == ("sender-policy", "strip-bcc", "transfer-encoding", "test-watch")


def test_a_signing_step_before_the_transfer_encoding_step_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="transfer-encoding"):
        Pipeline([Signing(), TransferEncoding()])
    with pytest.raises(ConfigurationError, match="transfer-encoding"):
        Pipeline([Signing()])
    assert Pipeline([TransferEncoding(), Signing()]).names == ("transfer-encoding", "test-signature")


def test_a_step_name_is_registered_once(registered) -> None:
    registered(Watching())
    with pytest.raises(ConfigurationError, match="test-watch"):
        register_step(Watching())
    with pytest.raises(ConfigurationError, match="strip-bcc"):
        register_step(Watching(name="strip-bcc"))


# -- blind copies: removed once, by the pipeline, on every way in ---------------------------------------------

def test_render_raw_leaves_blind_copies_to_the_pipeline() -> None:
    assert b"Bcc: secret@example.com\r\n" in render_raw("app@example.com", ["friend@example.com"], BCC).data


@pytest.mark.parametrize("way", ["raw", "ingress"])
def test_blind_copies_are_stripped_by_the_pipeline_on_every_way_in(way, smtp_server, make_settings, ingress_factory,
                                                                   registered) -> None:
    watch = registered(Watching())
    recipients = ["friend@example.com", "secret@example.com"]
    if way == "raw":
        assert raw(create_app(make_settings(**smtp_server.settings())).test_client(), BCC, recipients).status_code \
            == 202
    else:
        with smtplib.SMTP(HOST, ingress_factory(**smtp_server.settings()).port, timeout=DEADLINE_SECONDS) as client:
            assert client.sendmail("app@example.com", recipients, BCC) == {}
    [(seen, context)] = watch.seen
    assert context.via == ("http" if way == "raw" else "smtp") and context.backend == "smtp"
    assert b"Bcc" not in seen.data and b"To: friend@example.com\r\n" in seen.data
    [received] = smtp_server.messages
    assert received.rcpt_tos == recipients and received.data == seen.data


# -- the 7/8-bit decision and a signing step -----------------------------------------------------------------

def test_a_signing_step_signs_exactly_what_a_7bit_failover_upstream_receives(smtp_server_factory, make_settings,
                                                                              registered) -> None:
    eight_bit = smtp_server_factory(FaultHandler(data_reply="451 4.3.0 try again later"), enable_SMTPUTF8=False)
    seven_bit = smtp_server_factory(EightBitOptions(), decode_data=True, enable_SMTPUTF8=False)
    signing = registered(Signing())
    url = f"failover(smtp://{HOST}:{eight_bit.port} smtp://{HOST}:{seven_bit.port})"
    app = create_app(make_settings(mail_url=url, mail_retry_backoff=0.001))
    response = app.test_client().post("/v1/messages", json={**HELLO, "text": TEXT})
    assert response.status_code == 202, response.get_json()
    assert eight_bit.handler.data_commands == 1  # the 8BITMIME upstream had it first, and failed
    [(options, received)] = seven_bit.handler.received
    assert signing.signed == [received]  # exactly the signed bytes, on the upstream that took it
    message = email.message_from_bytes(verified(received), policy=email.policy.default)
    assert received.isascii() and not any(o.startswith("BODY=") for o in options)
    assert message.get_content().strip() == TEXT


def test_queued_delivery_stores_the_signed_bytes_it_later_sends(smtp_server_factory, make_settings, registered,
                                                                 queued_apps) -> None:
    seven_bit = smtp_server_factory(EightBitOptions(), decode_data=True, enable_SMTPUTF8=False)
    signing = registered(Signing())
    queued = queued_app(make_settings, mail_backend="smtp", mail_server=HOST, mail_port=seven_bit.port)
    queued_apps.append(queued)
    queued.wait_status(queued.send({**HELLO, "text": TEXT})["id"], "delivered")
    [(_, received)] = seven_bit.handler.received
    assert signing.signed == [received] and received.isascii()
    verified(received)


def test_a_signing_step_signs_the_line_endings_that_go_on_the_wire(smtp_server_factory, make_settings,
                                                                    registered) -> None:
    upstream = smtp_server_factory(EightBitOptions())
    signing = registered(Signing())
    data = b"From: app@example.com\nTo: friend@example.com\nSubject: bare line ends\n\nfirst\nlast"
    assert raw(create_app(make_settings(**upstream.settings())).test_client(), data).status_code == 202
    [(_, received)] = upstream.handler.received
    assert signing.signed == [received]
    assert verified(received).endswith(b"\r\n\r\nfirst\r\nlast\r\n")

def test_without_a_signing_step_8bit_bytes_are_left_to_the_upstream(smtp_server_factory, make_settings,
                                                                     registered) -> None:
    eight_bit = smtp_server_factory(EightBitOptions(), enable_SMTPUTF8=False)
    watch = registered(Watching())
    app = create_app(make_settings(**eight_bit.settings()))
    assert app.test_client().post("/v1/messages", json={**HELLO, "text": TEXT}).status_code == 202
    [(seen, _)] = watch.seen
    [(options, received)] = eight_bit.handler.received
    assert not seen.data.isascii() and received == on_the_wire(seen.data) and "BODY=8BITMIME" in options


@pytest.mark.parametrize(("data", "fix"), [
    ("From: Jörg <app@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhi\r\n", "RFC 2047"),
    # A boundary given both whole and in numbered pieces: the standard library's parser raised TypeError (a 500).
    ("From: app@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary*=b; boundary*0=b\r\n"
     "\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße\r\n--b--\r\n",
     "give each parameter once"),
], ids=["8bit-header", "parameter-in-pieces-and-whole"])
def test_a_message_a_signer_follows_that_cannot_be_made_7bit_is_refused_naming_the_fix(
        smtp_server, make_settings, ingress_factory, registered, data, fix) -> None:
    signing = registered(Signing())
    data = data.encode()
    response = raw(create_app(make_settings(**smtp_server.settings())).test_client(), data)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"] == "urn:mail-gateway:problem:invalid-message"
    [error] = body["errors"]
    assert error["field"] == "data" and fix in error["message"] and "signed" in error["message"]
    with smtplib.SMTP(HOST, ingress_factory(**smtp_server.settings()).port, timeout=DEADLINE_SECONDS) as client:
        with pytest.raises(smtplib.SMTPDataError) as caught:
            client.sendmail("app@example.com", ["friend@example.com"], data)
    assert caught.value.smtp_code == 554 and caught.value.smtp_error.startswith(b"5.6.0")
    assert signing.signed == [] and smtp_server.messages == []


# -- a step that refuses ------------------------------------------------------------------------------------------

def test_a_step_refusal_is_logged_and_answered_like_the_sender_policys(make_settings, ingress_factory, registered,
                                                                        caplog) -> None:
    registered(Refusing())
    app = create_app(make_settings(mail_backend="memory"))
    client = app.test_client()
    with caplog.at_level(logging.INFO, logger="mail_gateway.delivery"):
        response = client.post("/v1/messages", json={**HELLO, "subject": "forbidden"})
    assert response.status_code == 403 and response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"] == "urn:mail-gateway:problem:sender-not-allowed" and body["errors"][0]["field"] == "subject"
    [record] = [r for r in caplog.records if r.name == "mail_gateway.delivery"]
    assert record.levelno == logging.WARNING and "outcome=sender-not-allowed" in record.getMessage()
    batch = client.post("/v1/messages/batch", json={"messages": [HELLO, {**HELLO, "subject": "forbidden"}]})
    assert [r["status"] for r in batch.get_json()["results"]] == ["accepted", "failed"]
    assert batch.get_json()["results"][1]["error"]["status"] == 403
    assert len(outbox(app)) == 1
    ingress = ingress_factory(mail_backend="memory")
    with ingress.client() as smtp:
        smtp.ehlo()
        assert smtp.mail("app@example.com")[0] == 250 and smtp.rcpt("friend@example.com")[0] == 250
        code, reply = smtp.data(b"From: app@example.com\r\nSubject: forbidden\r\n\r\nhi\r\n")
    assert code == 550 and reply.startswith(b"5.7.1")
    assert ingress.backend.messages == []
