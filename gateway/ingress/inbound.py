"""Inbound routes: mail the ingress receives for ``GATEWAY_INBOUND_ROUTES`` addresses, posted to their webhooks.

A route names one address (``support@example.com``) or a whole domain (``*@in.example.com``). A domain named by
a route is the gateway's own: mail to its other addresses is refused at RCPT (550 5.1.1) unless the session
authenticated (a client of the gateway relaying out). The message is read once (``MessageReader``), kept with its
raw bytes (``GET /v1/inbound/<id>/raw``) and posted to the route's webhook in the same transaction, signed and
retried like delivery events (``mail_gateway.queue.webhooks``). A message for several routes is posted to each.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Sequence
from typing import Any

from mail_gateway.errors import StoreUnavailableError
from mail_gateway.ingress.replies import Reply
from mail_gateway.mail.reader import MessageReader
from mail_gateway.store import inbound
from mail_gateway.store.database import Store
from mail_gateway.store.messages import new_id
from mail_gateway.suppression.events import event_payload

log = logging.getLogger("mail_gateway.inbound")
UNKNOWN_RECIPIENT = "550 5.1.1 No such recipient here"
SPAM_PREFIXES = ("x-spam-", "x-ham-report", "x-rspamd-", "x-mailscanner-spamcheck", "authentication-results",
                 "received-spf", "arc-authentication-results")


def _address_parts(address: str) -> tuple[str, str]:
    local, _, domain = address.rpartition("@")
    return local.lower(), domain.lower().rstrip(".")


class InboundMailbox:
    def __init__(self, routes: Sequence[tuple[str, str]], store: Store) -> None:
        self.routes = tuple(routes)
        self.store = store
        self.domains = {_address_parts(address)[1] for address, _ in self.routes}

    def route(self, address: str) -> str | None:
        """The webhook URL of the route ``address`` falls under (an exact address before its domain's)."""
        local, domain = _address_parts(address)
        exact = f"{local}@{domain}"
        for pattern, url in self.routes:
            if pattern == exact:
                return url
        return next((url for pattern, url in self.routes if pattern == f"*@{domain}"), None)

    def rcpt_reply(self, address: str, authenticated: bool = False) -> str | None:
        if self.route(address) is not None:
            return "250 2.1.5 OK"
        if _address_parts(address)[1] in self.domains and not authenticated:
            return UNKNOWN_RECIPIENT
        return None

    def receive(self, rcpt_tos: Sequence[str], data: bytes, peer: str, mail_from: str = "") -> Reply:
        reader = MessageReader(data, tuple(rcpt_tos))
        by_url: dict[str, list[str]] = {}
        for address in rcpt_tos:
            url = self.route(address)
            if url is not None:
                by_url.setdefault(url, []).append(address)
        now = time.time()
        received = [inbound.Received(new_id(), mail_from, to, url, data) for url, to in by_url.items()]
        try:
            self.store.write(lambda conn: [inbound.add(conn, r, payload(r, reader, now), now) for r in received])
        except StoreUnavailableError as exc:
            log.error("could not keep inbound mail from %s: %s", peer, exc)
            return Reply(451, ("4.3.0 The gateway's store is unavailable, try again later",), "error")
        log.info("inbound mail from %s kept as %s", peer, ",".join(r.id for r in received))
        return Reply(250, (f"2.0.0 OK: kept as {received[0].id}",), "accepted")


def payload(received: inbound.Received, reader: MessageReader, now: float) -> dict[str, object]:
    """The webhook's body: the event vocabulary's envelope (``inbound``) and the message as read."""
    event = event_payload(event_type="inbound", event_id=f"evt_{received.id}", message_id=None,
                          recipient=received.recipients[0], reject_reason=None, mta_response=None, detail=None,
                          now=now)
    data: dict[str, Any] = event["data"]  # type: ignore[assignment]
    headers = reader.headers
    data.update({
        "id": received.id, "raw_url": f"/v1/inbound/{received.id}/raw",
        "envelope": {"mail_from": received.mail_from, "rcpt_to": list(received.recipients)},
        "message_id": reader.message_id, "from": reader.from_, "to": reader.to, "cc": reader.cc,
        "subject": reader.subject, "text": reader.text, "html": reader.html,
        "headers": [[name, value] for name, value in headers],
        "spam": {name: value for name, value in headers if name.lower().startswith(SPAM_PREFIXES)},
        "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size,
                         "content_id": a.content_id, "inline": a.inline,
                         "content": base64.b64encode(a.content).decode("ascii")} for a in reader.attachments],
    })
    return event
