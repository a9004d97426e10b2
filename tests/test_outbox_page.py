"""The /outbox page through Flask's test client: what it serves, what it escapes, when it is off."""

from __future__ import annotations

import base64
from email.mime.image import MIMEImage

import pytest
from flask_mailman import EmailMultiAlternatives

from mail_gateway import MailGateway, create_app

PROBLEM = "application/problem+json"
HOSTILE = "<script>document.title='owned'</script>"


@pytest.fixture
def client(make_settings):
    return create_app(make_settings(mail_backend="memory")).test_client()


def send(client, **fields) -> None:
    body = {"from": "app@example.com", "to": ["friend@example.com"], "subject": "Hello", "text": "Hi", **fields}
    assert client.post("/v1/messages", json=body).status_code == 202


def test_the_page_lists_messages_newest_first(client) -> None:
    send(client, subject="older")
    send(client, subject="newer")
    response = client.get("/outbox")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert page.index("newer") < page.index("older")
    assert "2 messages" in page


def test_every_value_is_escaped(client) -> None:
    send(client, subject=HOSTILE, text=HOSTILE, **{"from": "\"Evil <b>Guy</b>\" <evil@example.com>"})
    listing = client.get("/outbox").get_data(as_text=True)
    message_id = client.get("/v1/outbox").json["messages"][0]["id"]
    detail = client.get(f"/outbox?id={message_id}").get_data(as_text=True)
    for page in (listing, detail):
        assert HOSTILE not in page and "<b>Guy</b>" not in page and "&lt;b&gt;Guy&lt;/b&gt;" in page
        assert "&lt;script&gt;document.title=&#39;owned&#39;&lt;/script&gt;" in page
    assert '<pre id="text-part">&lt;script&gt;' in detail


def test_the_page_forbids_inline_script_and_framing(client) -> None:
    policy = client.get("/outbox").headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy


def test_message_html_is_served_with_a_policy_that_runs_nothing_and_loads_nothing(client) -> None:
    send(client, html="<p>hi</p><script>alert(1)</script><img src='https://tracker.example/p.gif'>")
    message_id = client.get("/v1/outbox").json["messages"][0]["id"]
    detail = client.get(f"/outbox?id={message_id}").get_data(as_text=True)
    assert f'<iframe id="html-part" sandbox title="HTML part"\n            src="/outbox/messages/{message_id}/html">' \
        in detail
    response = client.get(f"/outbox/messages/{message_id}/html")
    assert response.status_code == 200 and response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox;") and "default-src 'none'" in policy and "script-src" not in policy
    assert "img-src data: cid:" in policy


def test_a_message_without_html_has_no_html_route(client) -> None:
    send(client)
    message_id = client.get("/v1/outbox").json["messages"][0]["id"]
    response = client.get(f"/outbox/messages/{message_id}/html")
    assert response.status_code == 404 and response.mimetype == PROBLEM


def test_the_page_data_routes_mirror_the_api(client) -> None:
    send(client, subject="mirrored")
    assert client.get("/outbox/messages").json == client.get("/v1/outbox").json
    assert client.delete("/outbox/messages").status_code == 204
    assert client.get("/v1/outbox").json["total"] == 0


def test_static_files_are_served(client) -> None:
    with client.get("/outbox/static/outbox.js") as script:
        assert script.status_code == 200 and "textContent" in script.get_data(as_text=True)
        assert "innerHTML" not in script.get_data(as_text=True)
    with client.get("/outbox/static/outbox.css") as style:
        assert style.status_code == 200


def test_a_backend_that_keeps_nothing_is_explained_on_the_page(make_settings) -> None:
    client = create_app(make_settings(mail_backend="console")).test_client()
    page = client.get("/outbox").get_data(as_text=True)
    assert "does not keep the messages" in page and "MAIL_BACKEND=memory" in page


def test_off_in_production_unless_enabled(make_settings) -> None:
    production = {"gateway_env": "production", "mail_backend": "memory", "gateway_allow_anonymous": True}
    off = create_app(make_settings(**production)).test_client()
    for path in ("/outbox", "/outbox/messages", "/outbox/static/inbox.js"):
        response = off.get(path)
        assert response.status_code == 404 and response.mimetype == PROBLEM
        assert "GATEWAY_OUTBOX_ENABLED=true" in response.json["detail"]
    assert off.get("/v1/outbox").status_code == 200  # the API is governed by API keys, not by this switch
    on = create_app(make_settings(**production, gateway_inbox_enabled=True)).test_client()
    assert on.get("/outbox").status_code == 200


def test_a_message_that_is_gone_is_explained_not_an_error(client) -> None:
    response = client.get("/outbox?id=42")
    assert response.status_code == 200
    assert "no longer kept" in response.get_data(as_text=True)


def test_embedded_cid_images_are_inlined_as_data_uris(make_settings) -> None:
    app = create_app(make_settings(mail_backend="memory"))
    png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
                           "AAAABJRU5ErkJggg==")  # a 1x1 PNG
    message = EmailMultiAlternatives("Logo", "text", "app@example.com", ["friend@example.com"])
    message.attach_alternative('<img src="cid:logo@example.com"><img src="cid:missing@example.com">', "text/html")
    message.mixed_subtype = "related"
    image = MIMEImage(png, "png")
    image.add_header("Content-ID", "<logo@example.com>")
    message.attach(image)
    message.encoding = "utf-8"
    with app.app_context():
        MailGateway.state(app).sender.send_email(message)
    client = app.test_client()
    message_id = client.get("/v1/outbox").json["messages"][0]["id"]
    html = client.get(f"/outbox/messages/{message_id}/html").get_data(as_text=True)
    assert f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}">' in html
    assert '<img src="cid:missing@example.com">' in html
