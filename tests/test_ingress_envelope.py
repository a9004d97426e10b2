"""The SMTP ingress's envelope: senders and recipients checked where the client can still act on the reply."""

from __future__ import annotations

from ingress_support import message_bytes

SENDER = "app@example.com"
GOOD, OTHER = "friend@example.com", "other@example.org"


def test_a_recipient_that_is_not_an_address_is_refused_at_rcpt_and_the_others_get_the_message(
        ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory")
    with ingress.client() as client:
        client.ehlo()
        assert client.mail(SENDER)[0] == 250
        assert client.rcpt(GOOD)[0] == 250
        code, text = client.rcpt("postmaster")
        assert code == 553 and text.startswith(b"5.1.3 ") and b"'postmaster' is not an email address" in text
        assert b"local-part@domain" in text
        assert client.rcpt(OTHER)[0] == 250
        assert client.data(message_bytes())[0] == 250
    assert [m.recipients for m in ingress.backend.messages] == [(GOOD, OTHER)]


def test_the_null_address_is_refused_as_a_recipient(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory")
    with ingress.client() as client:
        client.ehlo()
        assert client.mail(SENDER)[0] == 250
        code, text = client.rcpt("")  # RCPT TO:<>
        assert code == 553 and text.startswith(b"5.1.3 ") and b"<>" in text
        assert client.rcpt(GOOD)[0] == 250
        assert client.data(message_bytes())[0] == 250
    assert [m.recipients for m in ingress.backend.messages] == [(GOOD,)]


def test_a_sender_that_is_not_an_address_is_refused_at_mail(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory")
    with ingress.client() as client:
        client.ehlo()
        code, text = client.docmd("MAIL FROM:<not an address>")
        assert code == 553 and text.startswith(b"5.1.7 ") and b"not an address" in text
        assert b"is not an email address" in text
        code, text = client.mail("nobody")
        assert code == 553 and b"'nobody' is not an email address" in text
        assert client.mail(SENDER)[0] == 250  # the session goes on with a good one
        assert client.rcpt(GOOD)[0] == 250
        assert client.data(message_bytes())[0] == 250
    assert [m.envelope_from for m in ingress.backend.messages] == [SENDER]


def test_an_address_whose_domain_has_no_idna_form_is_refused_at_rcpt(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory")
    with ingress.client() as client:
        client.ehlo()
        assert client.mail(SENDER, ["SMTPUTF8"])[0] == 250
        code, text = client.rcpt("user@\u2603.example")  # a snowman: no IDNA 2008 form
        assert code == 553 and text.startswith(b"5.1.3 ") and b"IDNA 2008" in text
        assert client.rcpt(GOOD)[0] == 250
        assert client.data(message_bytes())[0] == 250
    assert [m.recipients for m in ingress.backend.messages] == [(GOOD,)]


def test_the_null_sender_of_a_bounce_is_allowed_whatever_the_sender_policy_and_kept_empty(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory", gateway_allowed_senders=SENDER)
    with ingress.client() as client:
        client.ehlo()
        assert client.mail("<>")[0] == 250  # MAIL FROM:<>
        assert client.rcpt(GOOD)[0] == 250
        assert client.data(message_bytes())[0] == 250
        assert client.mail("other@example.net")[0] == 550  # the policy still holds for a real sender
    assert [m.envelope_from for m in ingress.backend.messages] == [""]  # as the HTTP route stores it
