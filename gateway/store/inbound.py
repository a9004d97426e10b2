"""Inbound mail in the store: the received message and its webhook, written in one transaction, so a message the
ingress answered 250 for is always both kept and on its way to the route's webhook."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from mail_gateway.store.schema import inbound_messages as table
from mail_gateway.store.schema import webhook_deliveries, webhook_endpoints


@dataclass(frozen=True)
class Received:
    id: str
    mail_from: str
    recipients: Sequence[str]
    url: str
    data: bytes


def add(conn: Connection, received: Received, payload: dict[str, object], now: float) -> None:
    conn.execute(insert(table).values(id=received.id, received_at=now, mail_from=received.mail_from,
                                      recipients=json.dumps(list(received.recipients)), url=received.url,
                                      size=len(received.data), data=received.data))
    gone = conn.execute(select(webhook_endpoints.c.url).where(webhook_endpoints.c.url == received.url)).first()
    conn.execute(insert(webhook_deliveries).values(
        id=f"msg_{secrets.token_hex(12)}", url=received.url, type="message.inbound",
        payload=json.dumps(payload, separators=(",", ":")), status="gone" if gone else "pending", created_at=now,
        due_at=None if gone else now, attempts=0))


def raw(conn: Connection, inbound_id: str) -> bytes | None:
    row = conn.execute(select(table.c.data).where(table.c.id == inbound_id)).first()
    return None if row is None else bytes(row.data)


def purge_before(conn: Connection, before: float) -> int:
    """Forget inbound mail received before ``before`` (``GATEWAY_QUEUE_LIFETIME`` ago, as finished messages)."""
    return conn.execute(delete(table).where(table.c.received_at < before)).rowcount
