"""One-click unsubscribe (RFC 8058): the List-Unsubscribe headers a message asks for, signed by DKIM, and the
``/u/{token}`` routes that suppress the one recipient a token names.

Messages reach a real aiosmtpd upstream; the routes are called through Flask's test client as a mail client
(POST) or a person's browser (GET, then the button) would call them.
"""

from __future__ import annotations

import base64
import email
import email.policy
import re
import smtplib
from typing import Any

import pytest
from api_helpers import HELLO, assert_problem
from click.testing import CliRunner
from flask import Flask
from queue_support import queued_app
from smtp_server import HOST
from sqlalchemy import select
from test_dkim import Upstream, keys, signatures, verified  # noqa: F401 (keys is a fixture)

from mail_gateway import MailGateway, create_app
from mail_gateway.cli import main
from mail_gateway.errors import ConfigurationError
from mail_gateway.ingress.server import IngressServer
from mail_gateway.mail.unsubscribe import TokenSigner
from mail_gateway.runtime import Runtime
from mail_gateway.settings import load_settings
from mail_gateway.store import suppressions
from mail_gateway.store.schema import webhook_deliveries

PUBLIC_URL = "https://mail.example.com"
SECRET = "unsubscribe-signing-secret-0123456789abcdef"
UNSUBSCRIBE = {"gateway_public_url": PUBLIC_URL, "gateway_unsubscribe_secret": SECRET}
ONE_CLICK = {"List-Unsubscribe": "One-Click"}
FRIEND = "friend@example.com"


def message(**changes: Any) -> dict[str, Any]:
    return {**HELLO, "unsubscribe": True, **changes}


def received_headers(data: bytes) -> email.message.Message:
    return email.message_from_bytes(data, policy=email.policy.default)


def link_path(data: bytes) -> str:
    """The path of the https link of List-Unsubscribe."""
    [url] = re.findall(r"<(https://[^>]+)>", str(received_headers(data)["List-Unsubscribe"]))
    assert url.startswith(PUBLIC_URL + "/u/"), url
    return url.removeprefix(PUBLIC_URL)


def app_with(tmp_path, make_settings, **values: Any):
    values.setdefault("gateway_store_url", f"sqlite:///{tmp_path}/store.sqlite3")
    return create_app(make_settings(mail_backend="memory", **UNSUBSCRIBE, **values))


def suppressed(app, *addresses: str) -> set[str]:
    return Runtime.of(app).store.read(lambda conn: suppressions.suppressed(conn, addresses))


def path_for(recipient: str, secret: str = SECRET) -> str:
    return "/u/" + TokenSigner(secret).token(recipient)


# -- the headers --------------------------------------------------------------------------------------------------

def test_a_message_asking_for_unsubscribe_carries_both_headers_and_dkim_signs_them(keys, smtp_server_factory,  # noqa: F811
                                                                                   make_settings) -> None:
    upstream = smtp_server_factory(Upstream())
    client = create_app(make_settings(**upstream.settings(), **keys.settings, **UNSUBSCRIBE)).test_client()
    response = client.post("/v1/messages", json=message())
    assert response.status_code == 202, response.get_json()
    [(_, data)] = upstream.handler.received
    headers = received_headers(data)
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert TokenSigner(SECRET).recipient(link_path(data).removeprefix("/u/")) == FRIEND
    assert verified(data, keys.dnsfunc) == ["s2026", "ed2026"]
    for tags in signatures(data):
        signed = re.split(rb"\s*:\s*", tags[b"h"].lower())
        assert b"list-unsubscribe" in signed and b"list-unsubscribe-post" in signed, signed
    forged = re.sub(rb"/u/[^>]+>", b"/u/somebody-else>", data, count=1)
    assert verified(forged, keys.dnsfunc) == []


def test_a_message_without_the_option_has_no_unsubscribe_headers(tmp_path, make_settings) -> None:
    app = app_with(tmp_path, make_settings)
    assert app.test_client().post("/v1/messages", json=HELLO).status_code == 202
    [kept] = Runtime.of(app).sender.backend.messages
    assert "List-Unsubscribe" not in received_headers(kept.data)


@pytest.mark.parametrize(("changes", "field", "said"), [
    ({"cc": ["other@example.com"]}, "unsubscribe", "one message per recipient"),
    ({"to": [FRIEND, "other@example.com"]}, "unsubscribe", "one message per recipient"),
    ({"headers": {"List-Unsubscribe": "<mailto:x@example.com>"}}, "headers.List-Unsubscribe", "leave it out"),
])
def test_a_message_that_cannot_carry_one_link_is_refused(changes, field, said, tmp_path, make_settings) -> None:
    response = app_with(tmp_path, make_settings).test_client().post("/v1/messages", json=message(**changes))
    body = assert_problem(response, 422)
    assert any(e["field"] == field and said in e["message"] for e in body["errors"]), body


def test_the_option_without_the_public_url_is_refused_naming_the_setting(make_settings) -> None:
    client = create_app(make_settings(mail_backend="memory")).test_client()
    body = assert_problem(client.post("/v1/messages", json=message()), 422)
    assert any(e["field"] == "unsubscribe" and "GATEWAY_PUBLIC_URL" in e["message"] for e in body["errors"]), body


def test_each_item_of_a_batch_gets_its_own_recipients_link(tmp_path, make_settings) -> None:
    app = app_with(tmp_path, make_settings)
    batch = {"messages": [message(to=["a@example.com"]), message(to=["b@example.com"])]}
    response = app.test_client().post("/v1/messages/batch", json=batch)
    assert response.status_code == 200, response.get_json()
    paths = [link_path(kept.data) for kept in Runtime.of(app).sender.backend.messages]
    assert [TokenSigner(SECRET).recipient(p.removeprefix("/u/")) for p in paths] == ["a@example.com",
                                                                                    "b@example.com"]


def test_the_send_command_adds_the_link_with_unsubscribe(tmp_path, monkeypatch) -> None:
    for name, value in {"MAIL_BACKEND": "file", "MAIL_FILE_PATH": str(tmp_path), "GATEWAY_PUBLIC_URL": PUBLIC_URL,
                        "GATEWAY_UNSUBSCRIBE_SECRET": SECRET, "GATEWAY_ENV": "testing"}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["send", "--from", "app@example.com", "--to", FRIEND, "--subject", "Hi",
                                       "--text", "Hello.", "--unsubscribe"])
    assert result.exit_code == 0, result.output
    [written] = [p for p in tmp_path.iterdir() if p.suffix == ".eml"]
    assert TokenSigner(SECRET).recipient(link_path(written.read_bytes()).removeprefix("/u/")) == FRIEND


def test_the_extension_sends_a_template_with_the_link(tmp_path) -> None:
    (tmp_path / "news.subject").write_text("News", encoding="utf-8")
    (tmp_path / "news.txt").write_text("What is new.", encoding="utf-8")
    app = Flask(__name__)
    app.config.update(TESTING=True, GATEWAY_TEMPLATES_DIR=str(tmp_path), MAIL_DEFAULT_SENDER="app@example.com",
                      GATEWAY_PUBLIC_URL=PUBLIC_URL, GATEWAY_UNSUBSCRIBE_SECRET=SECRET)
    mail = MailGateway(app)
    with app.app_context():
        mail.send_template("news", recipients=[FRIEND], unsubscribe=True)
    [kept] = MailGateway.state(app).backend.messages
    assert TokenSigner(SECRET).recipient(link_path(kept.data).removeprefix("/u/")) == FRIEND


# -- the routes ---------------------------------------------------------------------------------------------------

def test_one_click_post_suppresses_the_recipient_with_no_key_and_no_redirect(tmp_path, make_settings) -> None:
    app = app_with(tmp_path, make_settings, gateway_api_keys="an-api-key-of-the-service")
    client = app.test_client()
    assert client.post("/v1/messages", json=message()).status_code == 401  # the API itself stays protected
    response = client.post(path_for(FRIEND), data=ONE_CLICK)
    assert response.status_code == 200 and "Location" not in response.headers, response.get_data(as_text=True)
    assert suppressed(app, FRIEND, "friend@EXAMPLE.com", "other@example.com") == {FRIEND, "friend@EXAMPLE.com"}
    entry = Runtime.of(app).store.read(lambda conn: suppressions.get(conn, FRIEND))
    assert entry is not None and (entry.reason, entry.source, entry.expires_at) == ("unsubscribe", "unsubscribe",
                                                                                    None)


def test_the_link_in_a_sent_message_unsubscribes_its_recipient(tmp_path, make_settings) -> None:
    app = app_with(tmp_path, make_settings)
    client = app.test_client()
    assert client.post("/v1/messages", json=message()).status_code == 202
    [kept] = Runtime.of(app).sender.backend.messages
    assert client.post(link_path(kept.data), data=ONE_CLICK).status_code == 200
    assert suppressed(app, FRIEND) == {FRIEND}


def test_get_shows_a_button_and_suppresses_no_one(tmp_path, make_settings) -> None:
    app = app_with(tmp_path, make_settings)
    path = path_for(FRIEND)
    response = app.test_client().get(path)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert f'action="{path}"' in page and 'name="List-Unsubscribe" value="One-Click"' in page
    assert "<button" in page and FRIEND in page
    assert suppressed(app, FRIEND) == set()


def test_a_post_without_the_one_click_body_is_refused(tmp_path, make_settings) -> None:
    app = app_with(tmp_path, make_settings)
    body = assert_problem(app.test_client().post(path_for(FRIEND), data={"other": "x"}), 400)
    assert body["errors"][0]["field"] == "List-Unsubscribe"
    assert suppressed(app, FRIEND) == set()


def test_a_post_of_more_than_a_small_form_is_refused_before_it_is_read(tmp_path, make_settings) -> None:
    # Anyone a message reached holds a valid link: 20 MB of fields took the form parser 8 s and 850 MB.
    app = app_with(tmp_path, make_settings)
    body = "List-Unsubscribe=One-Click&" + "a=b&" * 16_384
    problem = assert_problem(app.test_client().post(path_for(FRIEND), data=body,
                                                    content_type="application/x-www-form-urlencoded"), 413)
    assert problem["max_bytes"] == 4096 and "List-Unsubscribe=One-Click" in problem["detail"]
    assert suppressed(app, FRIEND) == set()
    multipart = app.test_client().post(path_for(FRIEND), data=ONE_CLICK, content_type="multipart/form-data")
    assert multipart.status_code == 200 and suppressed(app, FRIEND) == {FRIEND}


def _altered(token: str) -> str:
    named, mac = token.split(".")
    return f"{named}.{mac[:-2]}{'AB' if mac[-2:] != 'AB' else 'CD'}"


def _respelled(token: str, how: str) -> str:
    """The same recipient and MAC, written otherwise: base64 that decodes to the same bytes."""
    named, mac = token.split(".")
    if how == "padded":
        return f"{token}=="
    if how == "alphabet":  # standard base64's + for the URL alphabet's - (its / would end the path)
        assert "-" in mac
        return f"{named}.{mac.replace('-', '+')}"
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(mac[-1])
    return f"{named}.{mac[:-1]}{'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'[last ^ 1]}"


def _other_recipient(token: str) -> str:
    mac = token.split(".")[1]
    named = base64.urlsafe_b64encode(b"boss@example.com").rstrip(b"=").decode()
    return f"{named}.{mac}"


@pytest.mark.parametrize("make_token", [
    lambda: TokenSigner("another-secret-entirely-0123456789abcdef").token(FRIEND),
    lambda: _altered(TokenSigner(SECRET).token(FRIEND)),
    lambda: _other_recipient(TokenSigner(SECRET).token(FRIEND)),
    lambda: "not-a-token",
    lambda: TokenSigner(SECRET).token(FRIEND).split(".")[0],
    lambda: _respelled(TokenSigner(SECRET).token(FRIEND), "padded"),
    lambda: _respelled(TokenSigner(SECRET).token(FRIEND), "alphabet"),
    lambda: _respelled(TokenSigner(SECRET).token(FRIEND), "spare-bits"),  # 43 characters carry 258 bits for 256
], ids=["other-key", "altered", "other-recipient", "garbage", "no-signature", "padded", "alphabet", "spare-bits"])
def test_a_forged_or_altered_token_is_refused_and_suppresses_no_one(make_token, tmp_path, make_settings) -> None:
    app = app_with(tmp_path, make_settings)
    client = app.test_client()
    token = make_token()
    assert_problem(client.post("/u/" + token, data=ONE_CLICK), 404)
    page = client.get("/u/" + token)
    assert page.status_code == 404 and page.mimetype == "text/html" and "<form" not in page.get_data(as_text=True)
    assert suppressed(app, FRIEND, "boss@example.com") == set()


def test_the_post_is_idempotent_and_sends_one_unsubscribed_event(make_settings, queued_apps) -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    queued = queued_app(make_settings, workers=False, **UNSUBSCRIBE,
                        gateway_webhook_url="http://127.0.0.1:9/hook", gateway_webhook_secret=secret)
    queued_apps.append(queued)
    for _ in range(2):
        assert queued.client.post(path_for(FRIEND), data=ONE_CLICK).status_code == 200
    assert suppressed(queued.app, FRIEND) == {FRIEND}
    store = Runtime.of(queued.app).store
    rows = store.read(lambda conn: conn.execute(select(webhook_deliveries.c.type, webhook_deliveries.c.payload))
                      .all())
    assert [row.type for row in rows] == ["message.unsubscribed"]
    assert '"recipient":"friend@example.com"' in rows[0].payload and '"reject_reason":"unsubscribed"' in \
        rows[0].payload


def test_a_later_message_to_an_unsubscribed_recipient_is_suppressed(smtp_server_factory, make_settings,
                                                                     tmp_path) -> None:
    upstream = smtp_server_factory()
    app = create_app(make_settings(**upstream.settings(), **UNSUBSCRIBE,
                                   gateway_store_url=f"sqlite:///{tmp_path}/store.sqlite3"))
    client = app.test_client()
    assert client.post(path_for(FRIEND), data=ONE_CLICK).status_code == 200
    response = client.post("/v1/messages", json=HELLO)
    # The HTTP status of a message whose every recipient is suppressed is the suppression list's to decide.
    assert [r["status"] for r in response.get_json()["recipients"]] == ["suppressed"], response.get_json()
    assert upstream.handler.messages == []


# -- settings and secrets -----------------------------------------------------------------------------------------

def test_a_secret_without_a_public_url_stops_start_up_naming_both(monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_UNSUBSCRIBE_SECRET", SECRET)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    assert "GATEWAY_PUBLIC_URL" in str(caught.value) and SECRET not in str(caught.value)


@pytest.mark.parametrize(("name", "value", "said"), [
    ("GATEWAY_UNSUBSCRIBE_SECRET", "tiny-key-1", "32 characters"),
    ("GATEWAY_PUBLIC_URL", "ftp://files.example.org", "https://"),
])
def test_malformed_unsubscribe_settings_stop_start_up_naming_the_setting(name, value, said, monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_PUBLIC_URL", PUBLIC_URL)
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    assert caught.value.variable == name and said in str(caught.value) and value not in str(caught.value)


@pytest.mark.parametrize("url", ["https://gateway:pw-never-mailed@mail.example.com",
                                 "https://:pw-never-mailed@mail.example.com", "https://pw-never-mailed@mail.example.com"])
def test_a_public_url_with_a_login_stops_start_up_without_showing_it(url, monkeypatch) -> None:
    # Every message's List-Unsubscribe link is built on GATEWAY_PUBLIC_URL: its user:password@ went to every
    # recipient of a message sent with unsubscribe.
    monkeypatch.setenv("GATEWAY_UNSUBSCRIBE_SECRET", SECRET)
    monkeypatch.setenv("GATEWAY_PUBLIC_URL", url)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    assert caught.value.variable == "GATEWAY_PUBLIC_URL" and "user name or password" in str(caught.value)
    assert "pw-never-mailed" not in str(caught.value)


def test_the_secret_never_shows_in_reprs(make_settings) -> None:
    settings = make_settings(**UNSUBSCRIBE)
    assert SECRET not in repr(settings) and SECRET not in repr(TokenSigner(SECRET))
    assert SECRET not in repr(settings.unsubscribe)


# -- unsubscribing by mail (the mailto form) ----------------------------------------------------------------------

BOUNCE_DOMAIN = "bounce.example.com"


def mail_unsubscribe(app, subject: str) -> tuple[int, bytes]:
    """Mail to the header's mailto address through a real ingress, as a mail client sends it."""
    runtime = Runtime.of(app)
    data = (f"From: {FRIEND}\r\nTo: unsubscribe@{BOUNCE_DOMAIN}\r\nSubject: {subject}\r\n\r\nplease\r\n").encode()
    with IngressServer(runtime.settings, runtime.sender, port=0, store=runtime.store) as server, \
            smtplib.SMTP(HOST, server.port, timeout=15) as client:
        client.ehlo("client.example.net")
        client.mail(FRIEND)
        code, reply = client.rcpt(f"unsubscribe@{BOUNCE_DOMAIN}")
        assert code == 250, reply
        return client.data(data)


def test_with_a_bounce_domain_the_header_also_has_a_mailto_that_unsubscribes(tmp_path, make_settings) -> None:
    app = app_with(tmp_path, make_settings, gateway_bounce_domain=BOUNCE_DOMAIN)
    assert app.test_client().post("/v1/messages", json=message()).status_code == 202
    [kept] = Runtime.of(app).sender.backend.messages
    header = " ".join(str(received_headers(kept.data)["List-Unsubscribe"]).split())  # unfolded
    token = path_for(FRIEND).removeprefix("/u/")
    assert header == (f"<{PUBLIC_URL}/u/{token}>, <mailto:unsubscribe@{BOUNCE_DOMAIN}?subject=unsubscribe%20{token}>")
    code, reply = mail_unsubscribe(app, f"Re: unsubscribe {token}")
    assert code == 250, reply
    assert suppressed(app, FRIEND, "other@example.com") == {FRIEND}


@pytest.mark.parametrize("subject", ["unsubscribe", "unsubscribe not-a-token",
                                     "unsubscribe " + TokenSigner("another-secret-0123456789abcdef-xyz").token(FRIEND)])
def test_unsubscribe_mail_without_a_valid_token_is_refused_and_suppresses_no_one(subject, tmp_path,
                                                                                  make_settings) -> None:
    app = app_with(tmp_path, make_settings, gateway_bounce_domain=BOUNCE_DOMAIN)
    code, reply = mail_unsubscribe(app, subject)
    assert code == 550 and b"no valid unsubscribe token" in reply
    assert suppressed(app, FRIEND) == set()
