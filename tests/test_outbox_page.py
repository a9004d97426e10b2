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


def test_the_page_holds_no_message_its_scripts_list_them_through_the_data_routes(client) -> None:
    # The data routes apply a key's own inbox; a page listing mail itself would show every key's.
    send(client, subject=f"{HOSTILE} secret of another key")
    response = client.get("/outbox")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "secret of another key" not in page and HOSTILE not in page
    assert '<script type="module" src="/outbox/static/outbox.js"></script>' in page
    assert 'data-messages-url="/outbox/messages"' in page and 'data-events-url="/outbox/events"' in page


def test_every_script_module_of_the_page_is_served_and_builds_no_html_from_data(client) -> None:
    for name in ("outbox.js", "api.js", "list.js", "message.js", "panels.js"):
        with client.get(f"/outbox/static/{name}") as script:
            source = script.get_data(as_text=True)
            assert script.status_code == 200 and script.mimetype in ("text/javascript", "application/javascript")
            assert "innerHTML" not in source and "insertAdjacentHTML" not in source and "eval(" not in source


def test_the_page_forbids_inline_script_and_framing(client) -> None:
    policy = client.get("/outbox").headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy


def test_message_html_is_served_with_a_policy_that_runs_nothing_and_loads_nothing(client) -> None:
    send(client, html="<p>hi</p><script>alert(1)</script><img src='https://tracker.example/p.gif'>")
    message_id = client.get("/v1/outbox").json["messages"][0]["id"]
    response = client.get(f"/outbox/messages/{message_id}/html")
    assert response.status_code == 200 and response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox;") and "default-src 'none'" in policy and "script-src" not in policy
    assert "img-src data: cid:" in policy


def test_remote_content_loads_only_in_the_variant_the_allow_button_asks_for(client) -> None:
    send(client, html="<img src='https://images.example/logo.png'><script>alert(1)</script>")
    message_id = client.get("/v1/outbox").json["messages"][0]["id"]
    blocked = client.get(f"/outbox/messages/{message_id}/html").headers["Content-Security-Policy"]
    allowed = client.get(f"/outbox/messages/{message_id}/html?remote=1").headers["Content-Security-Policy"]
    assert "https:" not in blocked
    assert allowed.startswith("sandbox;") and "default-src 'none'" in allowed and "script-src" not in allowed
    assert "img-src data: cid: http: https:" in allowed and "style-src 'unsafe-inline' http: https:" in allowed
    assert client.get(f"/outbox/messages/{message_id}/html?remote=yes").headers["Content-Security-Policy"] == blocked


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


def test_an_image_named_many_times_is_inlined_within_a_bound(make_settings) -> None:
    # Each reference was replaced by the whole image: 100 KB named 1,000 times in 24 KB of HTML made a 133 MB
    # answer (a megabyte named ten thousand times, 13 GB), built in memory for one view.
    app = create_app(make_settings(mail_backend="memory"))
    image = bytes(range(256)) * 400  # 100 KB
    html = '<img src="cid:big@example.com">' * 1000
    raw = ("From: app@example.com\r\nTo: friend@example.com\r\nSubject: Big\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/related; boundary=B\r\n\r\n--B\r\nContent-Type: text/html\r\n\r\n"
           f"{html}\r\n--B\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
           f"Content-ID: <big@example.com>\r\n\r\n{base64.encodebytes(image).decode()}--B--\r\n").encode()
    kept = MailGateway.state(app).backend.keep(raw, ("friend@example.com",), "app@example.com")
    shown = app.test_client().get(f"/outbox/messages/{kept.id}/html").get_data(as_text=True)
    uri = f'<img src="data:image/png;base64,{base64.b64encode(image).decode()}">'
    assert shown.startswith(uri * 2)  # the image itself, as often as twice its size (and a megabyte) allows
    assert len(shown) < 4 * 1024 * 1024 and shown.rstrip().endswith('<img src="cid:big@example.com">')


def test_another_keys_message_is_as_gone_on_the_page_as_in_the_api(make_settings) -> None:
    app = create_app(make_settings(mail_backend="memory", gateway_api_keys="ana:ana-key-0123456789,"
                                   "bo:bo-key-0123456789"))
    client = app.test_client()
    assert client.post("/v1/messages", headers={"Authorization": "Bearer bo-key-0123456789"}, json={
        "from": "app@example.com", "to": ["friend@example.com"], "subject": "Bo's", "text": "Hi"}).status_code == 202
    [bos] = client.get("/v1/outbox", headers={"Authorization": "Bearer bo-key-0123456789"}).json["messages"]
    assert client.post("/outbox/login", data={"key": "ana-key-0123456789"}).status_code == 303
    assert client.get(f"/outbox/messages/{bos['id']}").status_code == 404
    assert "no longer kept" in client.get(f"/outbox?id={bos['id']}").get_data(as_text=True)
