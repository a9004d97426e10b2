"""Shared helpers of the HTTP API tests."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from typing import Any

from mail_gateway import MailGateway

HELLO: dict[str, Any] = {"from": "app@example.com", "to": ["friend@example.com"], "subject": "Hello",
                         "text": "This is a test email sent from Flask."}


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
