"""The HTTP API through Flask's test client: success, every validation error, and every delivery failure."""

from __future__ import annotations

import email
import email.policy

import pytest
from api_helpers import parsed
from smtp_server import FaultHandler, free_port

from mail_gateway import MailGateway, create_app

HELLO = {"from": "app@example.com", "to": ["friend@example.com"], "subject": "Hello",
         "text": "This is a test email sent from Flask."}


@pytest.fixture
def app(make_settings):
    return create_app(make_settings(mail_backend="memory"))


@pytest.fixture
def client(app):
    return app.test_client()


def outbox(app):
    return MailGateway.state(app).backend.messages


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def test_send_returns_202_with_the_message_id_on_the_wire(app, client) -> None:
    response = client.post("/v1/messages", json=HELLO)
    assert response.status_code == 202
    body = response.get_json()
    [stored] = outbox(app)
    message = parsed(stored)
    assert body == {"message_id": message["Message-ID"], "backend": "memory",
                    "recipients": [{"email": "friend@example.com", "status": "accepted"}]}
    assert message["Subject"] == "Hello"
    assert message.get_content().strip() == HELLO["text"]


def test_healthz(client) -> None:
    assert client.get("/healthz").status_code == 200


def test_every_field_reaches_the_message(app, client) -> None:
    payload = {"from": "Jörg <app@example.com>", "to": "friend@example.com", "cc": ["Cé <c@bücher.example>"],
               "bcc": ["hidden@example.com"], "reply_to": "replies@example.com", "subject": "Grüße",
               "text": "plain", "html": "<p>html</p>", "headers": {"X-Campaign": "spring"}}
    response = client.post("/v1/messages", json=payload)
    assert response.status_code == 202
    assert len(response.get_json()["recipients"]) == 3
    message = parsed(outbox(app)[0])
    assert message["From"].addresses[0].display_name == "Jörg"
    assert message["Cc"].addresses[0].domain == "xn--bcher-kva.example"
    assert message["Reply-To"] == "replies@example.com"
    assert message["X-Campaign"] == "spring"
    assert "Bcc" not in message and "hidden@example.com" not in stored_text(app)
    assert message.get_body(("html",)).get_content().strip() == "<p>html</p>"
    assert message.get_body(("plain",)).get_content().strip() == "plain"


def stored_text(app) -> str:
    return outbox(app)[0].data.decode()


def test_html_only_is_sent_as_html(app, client) -> None:
    payload = {**HELLO, "html": "<b>hi</b>"}
    del payload["text"]
    assert client.post("/v1/messages", json=payload).status_code == 202
    assert parsed(outbox(app)[0]).get_content_type() == "text/html"


def test_from_defaults_to_mail_default_sender(make_settings) -> None:
    app = create_app(make_settings(mail_backend="memory", mail_default_sender="App <app@example.com>"))
    payload = {k: v for k, v in HELLO.items() if k != "from"}
    assert app.test_client().post("/v1/messages", json=payload).status_code == 202
    assert parsed(outbox(app)[0])["From"] == "App <app@example.com>"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"to": []}, "to"),
        ({"to": ["not-an-address"]}, "to[0]"),
        ({"cc": "also not"}, "cc[0]"),
        ({"from": None}, "from"),
        ({"text": None}, "text"),
        ({"colour": "blue"}, "colour"),
        ({"subject": "Hi\r\nBcc: victim@example.com"}, "subject"),
        ({"to": ["friend@example.com\r\nBcc: victim@example.com"]}, "to[0]"),
        ({"headers": {"X-Evil": "a\nBcc: victim@example.com"}}, "headers.X-Evil"),
        ({"headers": {"Bad Name": "x"}}, "headers.Bad Name"),
        ({"headers": {"From": "boss@example.com"}}, "headers.From"),
        ({"to": ["jö@@example.com"]}, "to[0]"),
    ],
)
def test_invalid_messages_are_422_naming_the_field(app, client, change, field) -> None:
    payload = {k: v for k, v in {**HELLO, **change}.items() if v is not None}
    body = assert_problem(client.post("/v1/messages", json=payload), 422)
    assert field in [e["field"] for e in body["errors"]]
    assert all(e["message"] for e in body["errors"])
    assert outbox(app) == []


def test_field_errors_say_what_the_field_must_be_in_the_gateways_words(client) -> None:
    payload = {**HELLO, "text": 5, "subject": "x" * 16_385, "tags": [""], "attachments": [{}], "metadata": {"k": 5}}
    body = assert_problem(client.post("/v1/messages", json=payload), 422)
    said = {error["field"]: error["message"] for error in body["errors"]}
    assert said == {
        "text": "must be text",
        "subject": "must be at most 16384 characters long",
        "tags[0]": "must be at least 1 character long",
        "metadata.k": "must be text",
        "attachments[0].filename": "is required",
        "attachments[0].content": "is required",
    }


def test_a_body_that_is_not_an_object_is_422(client) -> None:
    assert_problem(client.post("/v1/messages", json=["a list"]), 422)


def test_malformed_json_is_400(client) -> None:
    body = assert_problem(client.post("/v1/messages", data='{"to": ', content_type="application/json"), 400)
    assert "JSON" in body["detail"]


def test_a_body_that_is_not_json_is_415(client) -> None:
    assert_problem(client.post("/v1/messages", data="to=friend", content_type="text/plain"), 415)


def test_unknown_routes_and_methods_are_problems(client) -> None:
    assert_problem(client.get("/nowhere"), 404)
    assert_problem(client.put("/v1/messages"), 405)


def test_every_answer_says_its_content_type_is_not_to_be_sniffed(client) -> None:
    # A JSON body may quote a client's HTML (a template, a subject, a refused field): a browser must never take it
    # for a page. Each answer carries the header once, the outbox's too, which set it before the API did.
    answers = [client.post("/v1/messages", json=HELLO), client.get("/healthz"), client.get("/openapi.json"),
               client.get("/metrics"), client.get("/v1/templates"), client.get("/v1/outbox"), client.get("/nowhere"),
               client.put("/v1/messages"), client.post("/v1/messages", json={"to": "nobody"}),
               client.post("/v1/messages", data="{", content_type="application/json")]
    for answer in answers:
        assert answer.headers.getlist("X-Content-Type-Options") == ["nosniff"], (answer.request.path, answer.status)


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("GET", "/v1/outbox/bulk", {"POST"}), ("DELETE", "/v1/outbox/wait", {"GET"}),
    ("PATCH", "/v1/outbox/owners", {"GET"}), ("DELETE", "/v1/outbox/chaos", {"GET", "PUT"}),
    ("GET", "/v1/messages/batch", {"POST"}), ("DELETE", "/v1/messages/raw", {"POST"}),
])
def test_a_fixed_route_asked_with_a_method_it_does_not_take_is_405_not_taken_for_a_message_id(
        make_settings, tmp_path, method, path, allowed) -> None:
    # Before, the route of a message id answered: GET /v1/outbox/bulk was "no such message 'bulk'", and OPTIONS
    # listed GET, PATCH and DELETE.
    client = create_app(make_settings(mail_backend="memory", gateway_delivery="queued",
                                      gateway_store_url=f"sqlite:///{tmp_path / 's.db'}")).test_client()
    assert_problem(client.open(path, method=method), 405)
    for answer in (client.open(path, method=method), client.options(path)):
        assert set(answer.headers["Allow"].split(", ")) - {"OPTIONS", "HEAD"} == allowed


def test_a_request_with_thousands_of_invalid_fields_is_answered_with_the_first_hundred(client) -> None:
    # Before: every one listed, and every field named in the detail: 20,000 bad headers made a 3.8 MB answer.
    headers = {f"X-Note-{n}": "one\ntwo" for n in range(2_000)}
    response = client.post("/v1/messages", json={**HELLO, "headers": headers})
    body = assert_problem(response, 422)
    assert body["type"].endswith(":invalid-message") and len(body["errors"]) == 100 and body["errors_omitted"] == 1_900
    assert body["errors"][0]["field"] == "headers.X-Note-0" and "U+000A" in body["errors"][0]["message"]
    assert body["detail"].endswith("and 1990 more fields.") and len(response.data) < 20_000


@pytest.fixture
def smtp_app(make_settings, smtp_server_factory):
    def build(handler, **overrides):
        server = smtp_server_factory(handler)
        return create_app(make_settings(**server.settings(**overrides))).test_client(), server

    return build


def test_smtp_partial_refusal_is_202_with_each_outcome(smtp_app) -> None:
    client, server = smtp_app(FaultHandler(rcpt_replies={"b@example.com": "550 5.1.1 unknown user"}))
    response = client.post("/v1/messages", json={**HELLO, "to": ["a@example.com", "b@example.com"]})
    assert response.status_code == 202
    assert response.get_json()["recipients"] == [
        {"email": "a@example.com", "status": "accepted"},
        {"email": "b@example.com", "status": "rejected", "code": 550, "reason": "5.1.1 unknown user"},
    ]


def test_smtp_every_recipient_refused_is_422(smtp_app) -> None:
    client, server = smtp_app(FaultHandler(default_rcpt_reply="550 5.1.1 unknown user"))
    body = assert_problem(client.post("/v1/messages", json=HELLO), 422)
    assert body["recipients"] == [{"email": "friend@example.com", "status": "rejected", "code": 550,
                                   "reason": "5.1.1 unknown user"}]


@pytest.mark.parametrize(
    ("handler", "status", "retry_after"),
    [
        (FaultHandler(data_reply="554 5.6.0 rejected"), 502, False),
        (FaultHandler(data_reply="451 4.3.0 later"), 503, True),
        (FaultHandler(default_rcpt_reply="450 4.2.0 mailbox busy"), 503, True),
        (FaultHandler(disconnect_after_data=True), 503, False),
    ],
    ids=["554-data", "451-data", "450-every-rcpt", "lost-after-dot"],
)
def test_smtp_failures_map_to_status_codes(smtp_app, handler, status, retry_after) -> None:
    client, _ = smtp_app(handler)
    response = client.post("/v1/messages", json=HELLO)
    body = assert_problem(response, status)
    assert ("Retry-After" in response.headers) is retry_after
    assert body["message_id"].startswith("<")


def test_smtp_connection_refused_is_503(make_settings) -> None:
    app = create_app(make_settings(mail_backend="smtp", mail_server="127.0.0.1", mail_port=free_port()))
    response = app.test_client().post("/v1/messages", json=HELLO)
    assert_problem(response, 503)
    assert int(response.headers["Retry-After"]) > 0


def test_smtp_refused_login_is_502_without_the_password(smtp_server_factory, make_settings) -> None:
    from test_smtp_backend import Authenticator

    server = smtp_server_factory(FaultHandler(), authenticator=Authenticator(), auth_require_tls=False)
    app = create_app(make_settings(**server.settings(mail_username="app", mail_password="wrong-pw")))
    response = app.test_client().post("/v1/messages", json=HELLO)
    body = assert_problem(response, 502)
    assert body["type"].endswith(":upstream-refused") and body["smtp_code"] == 535 and "login" in body["detail"]
    assert "'app'" not in body["detail"] and "wrong-pw" not in response.get_data(as_text=True)


def test_an_unexpected_error_is_a_500_problem_without_a_traceback(make_settings) -> None:
    app = create_app(make_settings(mail_backend="failing_backend.ExplodingBackend"))
    response = app.test_client().post("/v1/messages", json=HELLO)
    body = assert_problem(response, 500)
    assert "boom" not in body["detail"]


def test_the_console_backend_prints_a_readable_message(make_settings, capsys) -> None:
    app = create_app(make_settings(mail_backend="console"))
    assert app.test_client().post("/v1/messages", json={**HELLO, "text": "Grüße aus Köln"}).status_code == 202
    out = capsys.readouterr().out
    assert "Subject: Hello" in out and "Grüße aus Köln" in out


def test_the_file_backend_leaves_one_parseable_eml(make_settings, tmp_path) -> None:
    app = create_app(make_settings(mail_backend="file", mail_file_path=tmp_path / "mail"))
    response = app.test_client().post("/v1/messages", json=HELLO)
    [path] = list((tmp_path / "mail").iterdir())
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"] == response.get_json()["message_id"]
