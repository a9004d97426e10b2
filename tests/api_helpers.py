"""Shared helpers of the HTTP API tests."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from typing import Any

from mail_gateway import MailGateway

HELLO: dict[str, Any] = {"from": "app@example.com", "to": ["friend@example.com"], "subject": "Hello",
                         "text": "This is a test email sent from Flask."}


def deeply_nested(depth: int, within: str = "multipart") -> bytes:
    """A message whose text is ``depth`` levels down: within that many multipart/mixed parts, or messages
    (message/rfc822) within messages."""
    head = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
    text = b"Content-Type: text/plain\r\n\r\nx"
    if within == "message":
        return head + b"Content-Type: message/rfc822\r\n\r\n" * depth + text + b"\r\n"
    opening = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (n, n) for n in range(depth))
    closing = b"".join(b"\r\n--b%d--\r\n" % n for n in reversed(range(depth)))
    return head + opening + text + closing


def outbox(app) -> list:
    return MailGateway.state(app).backend.messages


def parsed(kept: Any) -> EmailMessage:
    """A kept message (or anything with ``data``) parsed by the standard library."""
    return email.message_from_bytes(kept.data, policy=email.policy.default)  # type: ignore[return-value]


def assert_problem(response, status: int, slug: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    if slug is not None:
        assert body["type"] == f"urn:mail-gateway:problem:{slug}"
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def fields(body: dict) -> list[str]:
    return [error["field"] for error in body.get("errors", [])]
