"""Findings 5 and 6 of the hostile-client review, against the running SMTP ingress over loopback: AUTH guessing
is cut off and slowed per client address, and idle or greedy sessions cannot lock others out. Other loopback
addresses (127.0.0.2, 127.0.0.3) stand in for other client machines."""

from __future__ import annotations

import base64
import logging
import smtplib
import socket
import time

from ingress_support import DEADLINE_SECONDS, message_bytes, wait_until
from smtp_server import HOST

from mail_gateway.ingress import auth

USERS = "app:correct-horse"
SENDER, RECIPIENT = "app@example.com", "friend@example.com"



def _plain(password: str) -> str:
    return base64.b64encode(f"\0app\0{password}".encode()).decode()


def _client(port: int, source: str = HOST) -> smtplib.SMTP:
    return smtplib.SMTP(HOST, port, timeout=DEADLINE_SECONDS, source_address=(source, 0))


def _closed(client: smtplib.SMTP) -> bool:
    try:
        client.noop()
    except smtplib.SMTPServerDisconnected:
        return True
    return False


def test_a_connection_is_closed_after_a_few_failed_auth_attempts(ingress_factory, caplog) -> None:
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_users=USERS, gateway_smtp_allow_insecure_auth=True)
    replies = []
    with caplog.at_level(logging.INFO, logger="mail_gateway.ingress"):
        client = _client(ingress.port)
        client.ehlo()
        for attempt in range(10):
            try:
                replies.append(client.docmd("AUTH", f"PLAIN {_plain(f'guess-{attempt}')}")[0])
            except smtplib.SMTPServerDisconnected:
                break
        client.close()
    assert replies[:3] == [535, 535, 535] and replies[3:] == [421], replies  # three guesses, then 421
    refusals = [r for r in caplog.records if "AUTH" in r.getMessage()]
    assert len(refusals) == 1, [r.getMessage() for r in refusals]  # one line for the burst, not one per guess
    assert "guess" not in caplog.text


def test_failures_from_one_address_slow_down_its_next_attempts(ingress_factory, monkeypatch) -> None:
    monkeypatch.setattr(auth, "AUTH_DELAY_BASE_SECONDS", 0.2)
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_users=USERS, gateway_smtp_allow_insecure_auth=True)
    client = _client(ingress.port)
    client.ehlo()
    for attempt in range(3):
        client.docmd("AUTH", f"PLAIN {_plain(f'guess-{attempt}')}")
    client.close()  # the third failure closed the session (421)
    # A new connection from the same address does not start afresh: its first guess waits (0.2 s doubled per
    # failure so far, three of them: 0.8 s); another address is not held back by it.
    with _client(ingress.port) as client, _client(ingress.port, "127.0.0.2") as other:
        client.ehlo()
        other.ehlo()
        started = time.monotonic()
        assert client.docmd("AUTH", f"PLAIN {_plain('guess-3')}")[0] == 535
        waited = time.monotonic() - started
        started = time.monotonic()
        assert other.docmd("AUTH", f"PLAIN {_plain('correct-horse')}")[0] == 235
        assert time.monotonic() - started < waited
    assert waited >= 0.7, waited


def test_idle_connections_from_one_address_cannot_lock_out_another(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_max_sessions=20)
    hogs = []
    try:
        for _ in range(20):  # what one misbehaving machine tries: every session the ingress has
            hog = socket.create_connection((HOST, ingress.port), timeout=DEADLINE_SECONDS)
            hogs.append(hog)
            if not hog.recv(512).startswith(b"220"):
                break
        with _client(ingress.port, "127.0.0.3") as client:
            client.sendmail(SENDER, [RECIPIENT], message_bytes())
        assert len(ingress.backend.messages) == 1
    finally:
        for hog in hogs:
            hog.close()


def test_a_session_must_start_mail_soon_after_connecting(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_start_timeout=1)
    with _client(ingress.port) as client:
        client.ehlo()
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline and not _closed(client):  # NOOP does not keep it alive
            time.sleep(0.2)
        assert time.monotonic() < deadline, "the idle session was not closed"


def test_a_session_has_a_bounded_length(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_max_session_seconds=2)
    with _client(ingress.port) as client:
        client.sendmail(SENDER, [RECIPIENT], message_bytes())
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline and not _closed(client):
            time.sleep(0.2)
        assert time.monotonic() < deadline, "the session was not closed"
    assert len(ingress.backend.messages) == 1
    wait_until(lambda: ingress.server.active_sessions == 0, "the session slot is free again")
