"""International domains are encoded with IDNA 2008 / UTS #46 (the ``idna`` package) on every path: the envelope,
the headers and the Message-ID. Python's IDNA 2003 codec would send ``faß.de`` mail to ``fass.de``."""

from __future__ import annotations

import base64
import email
import email.policy
import smtplib

import idna
import pytest
from api_helpers import HELLO
from flask_mailman import EmailMessage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingress_support import DEADLINE_SECONDS, IngressFactory
from smtp_server import HOST

from mail_gateway import create_app
from mail_gateway.backends.registry import create_backend
from mail_gateway.errors import InvalidMessageError
from mail_gateway.mail.addresses import envelope_address, parse_address

# Code points IDNA 2003 maps to other letters (ß -> ss, final ς -> σ, ZWJ/ZWNJ dropped, Cherokee small letters
# to capitals) beside ordinary letters, digits and the characters UTS #46 maps or refuses.
TRICKY = "ßςσ\u200d\u200cᏸᏹᏺꭰꭱaz09-.ÄéÖü東京ー\u3002\uff0eＡ"


def parsed(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def test_http_mail_to_fass_de_goes_to_fass_de_not_fass(smtp_server, make_settings) -> None:
    app = create_app(make_settings(**smtp_server.settings()))
    response = app.test_client().post("/v1/messages", json={**HELLO, "from": "app@faß.de",
                                                             "to": ["bob@faß.de", "eve@xn--fa-hia.de"]})
    assert response.status_code == 202
    [received] = smtp_server.messages
    assert received.mail_from == "app@xn--fa-hia.de"
    assert received.rcpt_tos == ["bob@xn--fa-hia.de", "eve@xn--fa-hia.de"]
    message = parsed(received.data)
    assert [a.domain for a in message["To"].addresses] == ["xn--fa-hia.de", "xn--fa-hia.de"]
    assert message["Message-ID"].endswith("@xn--fa-hia.de>")


def test_library_mail_to_fass_de_goes_to_fass_de_not_fass(smtp_server, make_settings) -> None:
    backend = create_backend(make_settings(**smtp_server.settings()))
    backend.send_messages([EmailMessage("Hi", "body", "Grüße <app@faß.de>", ["Bob <bob@faß.de>", "ς@ς.gr"])])
    [received] = smtp_server.messages
    assert received.mail_from == "app@xn--fa-hia.de"
    assert received.rcpt_tos == ["bob@xn--fa-hia.de", f"ς@{idna.encode('ς.gr', uts46=True).decode()}"]
    message = parsed(received.data)
    assert message["From"].addresses[0].domain == "xn--fa-hia.de" and message["From"].addresses[0].display_name \
        == "Grüße"
    assert message["To"].addresses[0].domain == "xn--fa-hia.de"
    assert message["Message-ID"].endswith("@xn--fa-hia.de>")
    backend.close()


def test_raw_and_relayed_envelopes_are_encoded_the_same_way(smtp_server, make_settings) -> None:
    app = create_app(make_settings(**smtp_server.settings()))
    data = base64.b64encode(b"From: app@example.com\r\nSubject: raw\r\n\r\nhi\r\n").decode()
    response = app.test_client().post("/v1/messages/raw", json={"mail_from": "app@faß.de", "rcpt_to": ["bob@faß.de"],
                                                                 "data": data})
    assert response.status_code == 202
    factory = IngressFactory(lambda **values: app.extensions["mail_gateway"].settings)
    try:
        ingress = factory(backend=app.extensions["mail_gateway"].backend)
        with smtplib.SMTP(HOST, ingress.port, timeout=DEADLINE_SECONDS) as client:
            client.sendmail("app@faß.de", ["bob@faß.de"], b"Subject: relayed\r\n\r\nhi\r\n", mail_options=["SMTPUTF8"])
    finally:
        factory.stop_all()
    expected = ("app@xn--fa-hia.de", ["bob@xn--fa-hia.de"])
    assert [(m.mail_from, m.rcpt_tos) for m in smtp_server.messages] == [expected, expected]


def test_a_domain_without_an_idna_2008_encoding_is_a_422_or_refused(make_settings) -> None:
    app = create_app(make_settings(mail_backend="memory"))
    response = app.test_client().post("/v1/messages", json={**HELLO, "to": ["bob@\u2603.example"]})
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "to[0]"
    backend = create_backend(make_settings(mail_backend="memory"))
    with pytest.raises(InvalidMessageError, match=r"to\[0\]: .* U\+2603"):
        backend.send_messages([EmailMessage("Hi", "body", "app@example.com", ["bob@\u2603.example"])])
    assert backend.messages == []


labels = st.text(alphabet=st.sampled_from(TRICKY) | st.characters(codec="utf-8", exclude_categories=("Cs",)),
                 min_size=1, max_size=12)


@settings(max_examples=600, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(domain=st.lists(labels, min_size=1, max_size=3).map(".".join).filter(lambda d: not d.isascii()))
def test_the_envelope_domain_is_what_the_idna_package_says(domain: str) -> None:
    try:
        expected = idna.encode(domain, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError:
        expected = None
    if expected is None:
        with pytest.raises(InvalidMessageError):
            envelope_address(f"bob@{domain}")
    else:
        assert envelope_address(f"bob@{domain}") == f"bob@{expected}"
    try:
        address = parse_address(f"bob@{domain}")
    except ValueError:
        return  # email_validator's own, stricter rules
    assert expected is not None and address.envelope == f"bob@{expected}"
