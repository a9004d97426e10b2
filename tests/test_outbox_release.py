"""Releasing a kept message to a real SMTP server (aiosmtpd on loopback): the envelope chosen, the bytes as kept."""

from __future__ import annotations

import socket

import pytest
from smtp_server import HOST, FaultHandler

from mail_gateway import create_app
from mail_gateway.errors import ConfigurationError

MESSAGE = {"from": "App <app@example.com>", "to": ["friend@example.com"], "cc": ["team@example.com"],
           "subject": "Release me", "text": "Hi there", "html": "<p>Hi <b>there</b></p>"}
KEY = "release-test-key-0123456789"


def kept(client, headers=None) -> tuple[str, bytes]:
    assert client.post("/v1/messages", json=MESSAGE, headers=headers).status_code == 202
    message_id = client.get("/v1/outbox", headers=headers).json["messages"][0]["id"]
    return message_id, client.get(f"/v1/outbox/{message_id}/raw", headers=headers).data


def test_a_released_message_reaches_the_server_as_kept_to_the_chosen_recipient(make_settings, smtp_server) -> None:
    client = create_app(make_settings(mail_backend="memory")).test_client()
    message_id, data = kept(client)
    released = client.post(f"/v1/outbox/{message_id}/release",
                           json={"to": "Me <me@example.org>", "host": HOST, "port": smtp_server.port})
    assert released.status_code == 200, released.json
    assert released.json == {"released": True, "reply": "250 2.0.0 OK queued"}
    [received] = smtp_server.messages
    assert received.rcpt_tos == ["me@example.org"] and received.mail_from == "app@example.com"
    assert received.data == data  # headers untouched: To and Cc still name the original recipients
    assert client.get("/v1/outbox").json["total"] == 1  # the outbox keeps it


def test_without_a_host_the_configured_relay_is_used(make_settings, smtp_server) -> None:
    app = create_app(make_settings(mail_backend="memory",
                                   gateway_outbox_release_url=f"smtp://{HOST}:{smtp_server.port}"))
    client = app.test_client()
    message_id, _ = kept(client)
    assert client.post(f"/outbox/messages/{message_id}/release", json={"to": "me@example.org"}).status_code == 200
    assert [m.rcpt_tos for m in smtp_server.messages] == [["me@example.org"]]


def test_without_a_host_or_a_relay_the_problem_names_both(make_settings) -> None:
    client = create_app(make_settings(mail_backend="memory")).test_client()
    message_id, _ = kept(client)
    refused = client.post(f"/v1/outbox/{message_id}/release", json={"to": "me@example.org"})
    assert refused.status_code == 422 and refused.mimetype == "application/problem+json"
    [error] = refused.json["errors"]
    assert error["field"] == "host" and "GATEWAY_OUTBOX_RELEASE_URL" in error["message"]


@pytest.mark.parametrize("body, field", [({"to": "not an address", "host": HOST}, "to"),
                                          ({"host": HOST}, "to"),
                                          ({"to": "me@example.org", "host": HOST, "port": 0}, "port"),
                                          ({"to": "me@example.org", "hots": HOST}, "hots")])
def test_an_invalid_release_names_the_field(body, field, make_settings) -> None:
    client = create_app(make_settings(mail_backend="memory")).test_client()
    message_id, _ = kept(client)
    refused = client.post(f"/v1/outbox/{message_id}/release", json=body)
    assert refused.status_code == 422 and [e["field"] for e in refused.json["errors"]] == [field]


def test_a_server_refusing_the_recipient_is_answered_as_a_send_would_be(make_settings, smtp_server_factory) -> None:
    server = smtp_server_factory(FaultHandler(default_rcpt_reply="550 5.1.1 No such user"))
    client = create_app(make_settings(mail_backend="memory")).test_client()
    message_id, _ = kept(client)
    refused = client.post(f"/v1/outbox/{message_id}/release",
                          json={"to": "me@example.org", "host": HOST, "port": server.port})
    assert refused.status_code == 502 and refused.json["type"].endswith("upstream-refused")
    assert refused.json["smtp_code"] == 550 and server.messages == []


def test_an_unreachable_server_is_a_temporary_failure(make_settings) -> None:
    client = create_app(make_settings(mail_backend="memory")).test_client()
    message_id, _ = kept(client)
    with socket.socket() as sock:  # bound but never listening: connecting is refused at once
        sock.bind((HOST, 0))
        refused = client.post(f"/v1/outbox/{message_id}/release",
                              json={"to": "me@example.org", "host": HOST, "port": sock.getsockname()[1]})
    assert refused.status_code == 503 and refused.json["type"].endswith("delivery-deferred")


def test_production_releases_only_to_the_configured_relay(make_settings, smtp_server) -> None:
    app = create_app(make_settings(gateway_env="production", mail_backend="memory", gateway_api_keys=KEY,
                                   gateway_outbox_release_url=f"smtp://{HOST}:{smtp_server.port}"))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {KEY}"}
    message_id, _ = kept(client, headers)
    typed = client.post(f"/v1/outbox/{message_id}/release", headers=headers,
                        json={"to": "me@example.org", "host": HOST, "port": smtp_server.port})
    assert typed.status_code == 422 and typed.json["errors"][0]["field"] == "host"
    relay = client.post(f"/v1/outbox/{message_id}/release", headers=headers, json={"to": "me@example.org"})
    assert relay.status_code == 200 and len(smtp_server.messages) == 1
    assert client.post(f"/v1/outbox/{message_id}/release", json={"to": "me@example.org"}).status_code == 401


# smtp://:secret@... has an empty user name, which urllib gives as '': it passed for a URL without a login, and the
# settings' repr showed it.
@pytest.mark.parametrize("url", ["http://mail.example.com", "smtp://user:secret@mail.example.com:25", "smtp://",
                                 "smtp://:secret@mail.example.com:25", "smtp://@mail.example.com:25"])
def test_an_unusable_relay_url_stops_start_up_naming_it(url, make_settings) -> None:
    with pytest.raises((ConfigurationError, ValueError)) as raised:
        create_app(make_settings(mail_backend="memory", gateway_outbox_release_url=url))
    assert "gateway_outbox_release_url" in str(raised.value).lower() and "secret" not in str(raised.value)
