"""GATEWAY_ALLOWED_SENDERS: who may send as whom, per API key and per SMTP ingress user, on every way in."""

from __future__ import annotations

import base64
import smtplib

import pytest
from api_helpers import HELLO, outbox
from flask_mailman import EmailMessage

from mail_gateway import create_app
from mail_gateway.assembly import build_sender
from mail_gateway.errors import ConfigurationError, PermanentDeliveryError
from mail_gateway.mail import senders
from mail_gateway.mail.addresses import header_addresses
from mail_gateway.settings import load_settings

KEYS = "billing:k-billing,ops:k-ops,k-unnamed"
RULES = "@example.com, key:billing=billing@example.com key:billing=@bücher.example"
CEO = "CEO <ceo@bank.example>"



@pytest.fixture
def app(make_settings):
    return create_app(make_settings(mail_backend="memory", gateway_api_keys=KEYS, gateway_allowed_senders=RULES))


def send(app, key: str, route: str = "/v1/messages", **body):
    return app.test_client().post(route, json=body, headers={"Authorization": f"Bearer {key}"})


def assert_forbidden(response, field: str) -> None:
    assert response.status_code == 403 and response.mimetype == "application/problem+json", response.get_json()
    body = response.get_json()
    assert body["type"] == "urn:mail-gateway:problem:sender-not-allowed"
    assert [e["field"] for e in body["errors"]] == [field] and "GATEWAY_ALLOWED_SENDERS" in body["errors"][0]["message"]


def test_unset_anyone_may_send_as_anyone(make_settings) -> None:
    app = create_app(make_settings(mail_backend="memory"))
    assert app.test_client().post("/v1/messages", json={**HELLO, "from": CEO}).status_code == 202


def test_each_api_key_sends_only_as_its_own_entries(app) -> None:
    assert_forbidden(send(app, "k-ops", **{**HELLO, "from": CEO}), "from")
    assert_forbidden(send(app, "k-unnamed", **{**HELLO, "from": "ceo@bank.example"}), "from")
    assert send(app, "k-ops", **{**HELLO, "from": "Ops <Ops@EXAMPLE.com>"}).status_code == 202
    assert send(app, "k-unnamed", **{**HELLO, "from": "anyone@example.com"}).status_code == 202
    # billing has entries of its own, so the entries without a prefix are not its.
    assert_forbidden(send(app, "k-billing", **{**HELLO, "from": "ops@example.com"}), "from")
    assert send(app, "k-billing", **{**HELLO, "from": "Billing@example.com"}).status_code == 202
    assert send(app, "k-billing", **{**HELLO, "from": "invoices@bücher.example"}).status_code == 202
    assert send(app, "k-billing", **{**HELLO, "from": "invoices@xn--bcher-kva.example"}).status_code == 202
    assert len(outbox(app)) == 5


def test_a_forged_sender_header_is_refused_too(app) -> None:
    response = send(app, "k-ops", **{**HELLO, "headers": {"Sender": CEO}})
    assert_forbidden(response, "sender")
    assert outbox(app) == []


def test_a_from_field_too_long_to_be_read_is_refused_unread(app, monkeypatch) -> None:
    # The standard library's address parser takes time quadratic in such a field's length: a display name of 33
    # folded lines of dots, 32 KB, took 16 s of CPU before its refusal, 128 KB 203 s. It is refused unread.
    given: list[int] = []

    def parsing(text: str) -> list[tuple[str, str]] | None:
        given.append(len(text))
        return header_addresses(text)

    monkeypatch.setattr(senders, "header_addresses", parsing)
    dots = "".join(" " + "." * 990 + "\r\n" for _ in range(33))
    data = f"From: x\r\n{dots} <ops@example.com>\r\nTo: friend@example.com\r\nSubject: x\r\n\r\nhi\r\n".encode()
    response = send(app, "k-ops", "/v1/messages/raw", mail_from="ops@example.com", rcpt_to=["friend@example.com"],
                    data=base64.b64encode(data).decode())
    assert_forbidden(response, "from")
    assert "no From address that can be read" in response.get_json()["errors"][0]["message"]
    assert given == [] and outbox(app) == []


def test_the_raw_route_checks_the_envelope_and_the_from_header(app) -> None:
    def raw(mail_from: str, header: str):
        data = f"{header}To: friend@example.com\r\nSubject: x\r\n\r\nhi\r\n".encode()
        return send(app, "k-ops", "/v1/messages/raw", mail_from=mail_from, rcpt_to=["friend@example.com"],
                    data=base64.b64encode(data).decode())

    assert_forbidden(raw("ops@example.com", f"From: {CEO}\r\n"), "from")
    assert_forbidden(raw("ceo@bank.example", "From: ops@example.com\r\n"), "mail_from")
    assert_forbidden(raw("ops@example.com", ""), "from")  # no From to check is no From allowed
    assert_forbidden(raw("ops@example.com", "From: ops@example.com, =?utf-8?q?x?= <ceo@bank.example>\r\n"), "from")
    assert outbox(app) == []
    assert raw("ops@example.com", "From: Ops <ops@example.com>\r\n").status_code == 202


def test_a_batch_refuses_each_forged_message_on_its_own(app) -> None:
    response = send(app, "k-ops", "/v1/messages/batch", messages=[HELLO, {**HELLO, "from": CEO}])
    assert response.status_code == 200
    first, second = response.get_json()["results"]
    assert first["status"] == "accepted"
    assert second["status"] == "failed" and second["error"]["status"] == 403
    assert second["error"]["type"] == "urn:mail-gateway:problem:sender-not-allowed"
    assert len(outbox(app)) == 1


def test_the_library_path_is_held_to_the_entries_without_a_prefix(make_settings) -> None:
    settings = make_settings(mail_backend="memory", gateway_allowed_senders="@example.com")
    sender, _ = build_sender(settings)
    with pytest.raises(PermanentDeliveryError, match="GATEWAY_ALLOWED_SENDERS"):
        sender.send_email(EmailMessage("Hi", "body", CEO, ["friend@example.com"]))
    assert sender.send_email(EmailMessage("Hi", "body", "app@example.com", ["friend@example.com"])).accepted
    assert [kept.envelope_from for kept in sender.backend.messages] == ["app@example.com"]


def test_each_ingress_user_sends_only_as_its_own_entries(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_users="app:pw-app,cron:pw-cron",
                              gateway_smtp_allow_insecure_auth=True,
                              gateway_allowed_senders="@example.com, user:cron=cron@example.com")
    with ingress.client() as client:
        client.login("cron", "pw-cron")
        code, reply = client.mail("other@example.com")
        assert code == 550 and reply.startswith(b"5.7.1")  # at MAIL FROM, before any data
        assert client.mail("cron@example.com")[0] == 250
        assert client.rcpt("friend@example.com")[0] == 250
        code, reply = client.data(f"From: {CEO}\r\nSubject: x\r\n\r\nhi\r\n".encode())
        assert code == 550 and reply.startswith(b"5.7.1")  # the From field, after DATA
    with ingress.client() as client:
        client.login("app", "pw-app")
        with pytest.raises(smtplib.SMTPSenderRefused) as caught:
            client.sendmail("ceo@bank.example", ["friend@example.com"], b"From: ceo@bank.example\r\n\r\nhi\r\n")
        assert caught.value.smtp_code == 550
        assert client.sendmail("app@example.com", ["friend@example.com"], b"From: app@example.com\r\n\r\nhi\r\n") == {}
    assert [m.envelope_from for m in ingress.backend.messages] == ["app@example.com"]


@pytest.mark.parametrize(("env", "says"), [
    ({"GATEWAY_ALLOWED_SENDERS": "key:billing=a@example.com", "GATEWAY_API_KEYS": "k1"}, "'billing'"),
    ({"GATEWAY_ALLOWED_SENDERS": "user:cron=a@example.com", "GATEWAY_SMTP_USERS": "app:pw"}, "'cron'"),
    ({"GATEWAY_ALLOWED_SENDERS": "not-an-address"}, "neither an address nor an @domain"),
    ({"GATEWAY_ALLOWED_SENDERS": "@\u2603.example"}, "IDNA 2008"),
])
def test_a_policy_that_cannot_work_stops_start_up(monkeypatch, env, says) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    assert "GATEWAY_ALLOWED_SENDERS" in str(caught.value) and says in str(caught.value)
    assert "k1" not in str(caught.value) and ":pw" not in str(caught.value)


@pytest.mark.parametrize("entry", ["key:k-2f9a-secret=a@example.com", "user:pw-cron-secret=a@example.com",
                                   "key:k-2f9a-secret", "user:pw-cron-secret"])
def test_a_key_or_password_written_where_a_name_belongs_is_never_repeated(monkeypatch, entry) -> None:
    # As GATEWAY_ADMIN_KEYS does: the key itself (or the user's password) pasted in place of a name, or an entry
    # whose =address was left off, which may be one, stops start-up without showing it.
    monkeypatch.setenv("GATEWAY_API_KEYS", "billing:k-2f9a-secret")
    monkeypatch.setenv("GATEWAY_SMTP_USERS", "cron:pw-cron-secret")
    monkeypatch.setenv("GATEWAY_ALLOWED_SENDERS", f"@example.com, {entry}")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    assert "GATEWAY_ALLOWED_SENDERS" in str(caught.value) and "-secret" not in str(caught.value), caught.value
