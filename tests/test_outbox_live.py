"""The outbox as it changes: ``wait`` answering when a matching message is kept, and the page's Server-Sent
Events, through a real server on a loopback socket where the connection matters."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from ingress_support import wait_until
from werkzeug.serving import make_server

from mail_gateway import MailGateway, create_app
from mail_gateway.backends.kept import kept_mail_of
from mail_gateway.outbox import live

PROBLEM = "application/problem+json"


@pytest.fixture
def app(make_settings) -> Flask:
    return create_app(make_settings(mail_backend="memory"))


@pytest.fixture
def port(app: Flask) -> Iterator[int]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="gateway-under-test", daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


def post(client, **fields) -> None:
    body = {"from": "app@example.com", "to": ["ann@example.com"], "subject": "Hello", "text": "Hi", **fields}
    assert client.post("/v1/messages", json=body).status_code == 202


def test_wait_answers_at_once_with_a_message_kept_already(app) -> None:
    client = app.test_client()
    post(client, subject="Welcome Ann")
    response = client.get("/v1/outbox/wait", query_string={"query": "subject:welcome", "timeout": 60})
    assert response.status_code == 200 and response.json["subject"] == "Welcome Ann"


def test_wait_without_a_match_is_a_404_problem_naming_the_query(app) -> None:
    client = app.test_client()
    post(client, subject="Something else")
    response = client.get("/v1/outbox/wait", query_string={"query": "subject:welcome", "timeout": 0})
    assert response.status_code == 404 and response.content_type == PROBLEM
    assert response.json["type"].endswith("no-matching-message") and "subject:welcome" in response.json["detail"]
    assert response.json["errors"][0]["field"] == "query"


@pytest.mark.parametrize("query", ["timeout=61", "timeout=-1", "query=larger:huge"])
def test_a_bad_wait_is_a_400_problem(app, query) -> None:
    response = app.test_client().get(f"/v1/outbox/wait?{query}")
    assert response.status_code == 400 and response.content_type == PROBLEM


def test_wait_is_woken_by_the_message_it_waits_for(app, port) -> None:
    outbox = kept_mail_of(MailGateway.state(app).backend)
    answer: dict = {}

    def waiting() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=90)
        connection.request("GET", "/outbox/messages/wait?query=subject%3Aconfirm&timeout=60")
        response = connection.getresponse()
        answer.update(status=response.status, body=json.loads(response.read()))
        connection.close()

    waiter = threading.Thread(target=waiting)
    waiter.start()
    wait_until(lambda: outbox.keeping.waiting() == 1, "the wait sleeps on the change feed")
    post(app.test_client(), subject="Other")  # wakes it, but does not match: it sleeps again
    post(app.test_client(), subject="Please confirm")
    waiter.join(timeout=90)
    assert answer["status"] == 200 and answer["body"]["subject"] == "Please confirm"


def read_event(stream) -> tuple[str, str]:
    """The next event of an SSE stream (comments skipped): its name and data."""
    name, data = "", ""
    while True:
        line = stream.readline().decode()
        assert line, "the stream ended"
        if line.startswith(":"):
            continue
        if line == "\n" and name:
            return name, data
        key, _, value = line.rstrip("\n").partition(": ")
        if key == "event":
            name = value
        elif key == "data":
            data = value


def test_events_push_new_deleted_read_and_cleared(app, port) -> None:
    client = app.test_client()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/outbox/events")
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Type").startswith("text/event-stream")
    assert response.readline() == b": connected\n"
    post(client, subject="Live one")
    name, data = read_event(response)
    summary = json.loads(data)
    assert name == "message" and summary["subject"] == "Live one" and summary["read"] is False
    client.patch(f"/v1/outbox/{summary['id']}", json={"read": True})
    assert read_event(response) == ("read", json.dumps({"id": summary["id"], "read": True}))
    client.delete(f"/v1/outbox/{summary['id']}")
    assert read_event(response) == ("deleted", json.dumps({"ids": [summary["id"]]}))
    client.delete("/v1/outbox")
    assert read_event(response)[0] == "cleared"
    connection.close()
    post(client, subject="after the page went")  # the server's write fails and the stream ends


def test_event_streams_are_bounded_and_a_closed_one_frees_its_place(app) -> None:
    client = app.test_client()
    streams = [client.get("/outbox/events", buffered=False) for _ in range(live.MAX_STREAMS)]
    assert all(stream.status_code == 200 for stream in streams)
    refused = client.get("/outbox/events")
    assert refused.status_code == 503 and refused.content_type == PROBLEM and "Retry-After" in refused.headers
    streams.pop().close()
    again = client.get("/outbox/events", buffered=False)
    assert again.status_code == 200
    for stream in [*streams, again]:
        stream.close()


def test_a_named_keys_events_carry_only_its_own_mail(make_settings) -> None:
    keys = "ann:ann-key-0123456789,bob:bob-key-0123456789"
    app = create_app(make_settings(mail_backend="memory", gateway_api_keys=keys))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = app.test_client()
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
        connection.request("GET", "/outbox/events", headers={"Authorization": "Bearer ann-key-0123456789"})
        response = connection.getresponse()
        assert response.status == 200
        for sender in ("bob", "ann"):
            body = {"from": "app@example.com", "to": ["x@example.com"], "subject": f"from {sender}", "text": "."}
            client.post("/v1/messages", json=body, headers={"Authorization": f"Bearer {sender}-key-0123456789"})
        name, data = read_event(response)
        assert name == "message" and json.loads(data)["subject"] == "from ann"  # bob's was not sent to ann
        connection.close()
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as unauthenticated:
            unauthenticated.sendall(b"GET /outbox/events HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            assert unauthenticated.recv(64).startswith(b"HTTP/1.1 401")
    finally:
        kept_mail_of(MailGateway.state(app).backend).keeping.publish("cleared", {})  # ends the open stream
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def test_an_idle_stream_gets_keep_alive_comments(app, port, monkeypatch) -> None:
    monkeypatch.setattr(live, "KEEPALIVE_SECONDS", 0.01)  # instead of 15 s, so the test need not wait
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/outbox/events")
    response = connection.getresponse()
    assert response.readline() == b": connected\n" and response.readline() == b"\n"
    assert response.readline() == b": keep-alive\n"
    connection.close()


def _send_from_another_process(directory, subject: str) -> None:
    """``mail-gateway send`` with the file backend: a process of its own writing into ``directory``."""
    env = {**os.environ, "MAIL_BACKEND": "file", "MAIL_FILE_PATH": str(directory), "GATEWAY_ENV": "testing"}
    sent = subprocess.run([str(Path(sys.executable).parent / "mail-gateway"), "send", "--from", "app@example.com",
                           "--to", "ann@example.com", "--subject", subject, "--text", "Hi"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0, sent.stderr


def test_a_stream_hears_of_what_another_process_does_in_the_shared_directory(make_settings, tmp_path,
                                                                              monkeypatch) -> None:
    # Keep-alive comments would keep a stream that never hears anything reading forever: only the events count.
    monkeypatch.setattr(live, "KEEPALIVE_SECONDS", 600.0)
    app = create_app(make_settings(mail_backend="file", mail_file_path=tmp_path))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="gateway-under-test", daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
        connection.request("GET", "/outbox/events")
        response = connection.getresponse()
        assert response.readline() == b": connected\n"
        _send_from_another_process(tmp_path, "Written elsewhere")
        name, data = read_event(response)
        summary = json.loads(data)
        assert name == "message" and summary["subject"] == "Written elsewhere"
        (tmp_path / f".{summary['id']}.read").touch()  # as another process marks it read
        assert read_event(response) == ("read", json.dumps({"id": summary["id"], "read": True}))
        (tmp_path / f"{summary['id']}.eml").unlink()  # and deletes it
        assert read_event(response) == ("deleted", json.dumps({"ids": [summary["id"]]}))
        connection.close()
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def test_a_wait_is_woken_by_another_process_s_message(make_settings, tmp_path) -> None:
    app = create_app(make_settings(mail_backend="file", mail_file_path=tmp_path))
    outbox = kept_mail_of(MailGateway.state(app).backend)
    client = app.test_client()
    sequence = outbox.keeping.sequence()
    _send_from_another_process(tmp_path, "Please confirm")
    changes = outbox.keeping.changes_after(sequence, 30)
    assert [change.kind for change in changes] == ["message"]
    response = client.get("/v1/outbox/wait", query_string={"query": "subject:confirm", "timeout": 0})
    assert response.status_code == 200 and response.json["id"] == changes[0].data["id"]
