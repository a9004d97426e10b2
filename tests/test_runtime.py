"""The runtime: one object owns a process's settings, sender, store and delivery workers, started and stopped in
one place, and the features find an app's through ``Runtime.of`` (the Flask extension is a leaf)."""

from __future__ import annotations

import threading

import pytest
from flask import Flask
from ingress_support import wait_until

from mail_gateway import MailGateway, create_app
from mail_gateway.runtime import Runtime
from mail_gateway.settings import GatewaySettings

MESSAGE = {"from": "app@example.com", "to": ["friend@example.com"], "subject": "Queued", "text": "Kept, then sent."}


def _queue_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("queue-")]


def test_a_runtime_delivers_queued_mail_and_its_close_stops_the_workers(smtp_server, make_settings) -> None:
    settings: GatewaySettings = make_settings(**smtp_server.queued_settings(
        gateway_delivery="queued", gateway_store_url="sqlite:///runtime.sqlite3", gateway_queue_workers=2))
    runtime = Runtime.build(settings)
    try:
        workers = runtime.start_workers()
        assert runtime.start_workers() is workers  # one set of workers per runtime, however often asked
        sender = runtime.sender
        sender.send(sender.parse(MESSAGE), via="api")
        wait_until(lambda: len(smtp_server.messages) == 1, "the queued message reached the upstream")
        assert _queue_threads()
    finally:
        runtime.close()
    assert runtime.workers is None
    assert _queue_threads() == []
    wait_until(lambda: smtp_server.handler.quits >= 1, "the closed sender said QUIT to the upstream")


def test_starting_workers_without_queued_delivery_is_refused(make_settings) -> None:
    runtime = Runtime.build(make_settings(mail_backend="memory"))
    try:
        with pytest.raises(RuntimeError, match="GATEWAY_DELIVERY=queued"):
            runtime.start_workers()
    finally:
        runtime.close()


def test_the_app_factory_and_the_extension_register_the_same_runtime(make_settings) -> None:
    app = create_app(make_settings(mail_backend="memory"))
    runtime = Runtime.of(app)
    assert MailGateway.state(app) is runtime
    with app.app_context():
        assert Runtime.of() is runtime
    assert runtime.mail is app.extensions["mail"]
    runtime.close()


def test_an_app_without_the_gateway_says_how_to_register_it() -> None:
    with pytest.raises(RuntimeError, match=r"create_app\(\) or MailGateway\(app\)"):
        Runtime.of(Flask("plain"))


def test_close_says_quit_on_the_connections_of_named_backends_too(smtp_server) -> None:
    # get_connection("smtp") of a TESTING app keeps an SMTP sender of its own beside the app's memory backend.
    # Before: close() closed the app's sender and store only, leaving that sender's pooled connection open.
    from flask_mailman import EmailMessage

    app = Flask(__name__)
    app.config.update(TESTING=True, MAIL_SERVER=smtp_server.settings()["mail_server"], MAIL_PORT=smtp_server.port)
    mail = MailGateway(app)
    with app.app_context():
        EmailMessage("Real", "Sent.", "app@example.com", ["friend@example.com"],
                     connection=mail.get_connection("smtp")).send()
    assert len(smtp_server.messages) == 1
    MailGateway.state(app).close()
    wait_until(lambda: smtp_server.handler.quits == 1, "the named backend's pooled connection was quit")
