"""The bounce mailbox: what the ingress does with mail to ``bounces+<token>@GATEWAY_BOUNCE_DOMAIN``.

Mail there comes from remote servers, as to an MX: no AUTH is asked for it. A DSN (``mail_gateway.mail.dsn``)
records an event per recipient on the message the token names: ``failed`` is ``bounced`` (the recipient's state
too), and a permanent failure (5.x.x) puts the recipient on the suppression list (``hard-bounce``, source
``dsn``); ``delayed`` is a ``delayed`` event and suppresses no one. An auto-reply is ``autoresponded`` and
anything else ``unknown``: neither ever suppresses, since neither says an address does not exist.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from sqlalchemy.engine import Connection

from mail_gateway.errors import StoreUnavailableError
from mail_gateway.ingress.replies import Reply
from mail_gateway.mail.dsn import RecipientStatus, Returned, read_returned
from mail_gateway.mail.verp import is_bounce_address, is_direct_token, token_of
from mail_gateway.store import suppressions
from mail_gateway.store.bounces import mark_bounced
from mail_gateway.store.database import Store
from mail_gateway.suppression.events import record_event

log = logging.getLogger("mail_gateway.bounces")
_EVENTS = {"failed": "bounced", "delayed": "delayed", "delivered": "delivered", "relayed": "delivered",
           "expanded": "delivered"}


class BounceMailbox:
    def __init__(self, domain: str, store: Store, webhook_url: str | None, expiry: float = 0, *,
                 direct_tokens: bool = True) -> None:
        self.domain = domain
        self.store = store
        self.webhook_url = webhook_url
        self.expiry = expiry  # GATEWAY_SUPPRESSION_EXPIRY: how long an automatic entry lasts (0: for ever)
        # A direct message's token names no stored recipients, so its DSN is trusted as it is; a queued
        # deployment sends none, and refuses them rather than trust whoever writes one.
        self.direct_tokens = direct_tokens

    def rcpt_reply(self, address: str, authenticated: bool = False) -> str | None:
        if not is_bounce_address(address, self.domain):
            return None
        token = token_of(address, self.domain)
        direct = token is not None and token.startswith("m")
        if token is None or (direct and not (self.direct_tokens and is_direct_token(token))):
            # No message leaves with this address: mail to it could only be a forged report.
            return f"550 5.1.1 <{address}>: no message of this gateway was sent from this address"
        return "250 2.1.5 OK"

    def receive(self, rcpt_tos: Sequence[str], data: bytes, peer: str, mail_from: str = "") -> Reply:
        """Record what ``data`` reports about the messages the recipients' tokens name (a queue id; a direct
        message's token names none, so its events have no message)."""
        returned = read_returned(data)
        tokens = [token_of(address, self.domain) for address in rcpt_tos]
        ids = [t if t is not None and not t.startswith("m") else None for t in tokens] or [None]
        try:
            self.store.write(lambda conn: [self._record(conn, queue_id, returned) for queue_id in ids])
        except StoreUnavailableError as exc:
            log.error("could not record a %s from %s: %s", returned.kind, peer, exc)
            return Reply(451, ("4.3.0 The gateway's store is unavailable, try again later",), "error")
        log.info("received %s from %s for %s (%d recipients)", returned.kind, peer, ",".join(t or "-" for t in tokens),
                 len(returned.recipients))
        return Reply(250, (f"2.0.0 OK: {returned.kind} recorded",), "accepted")

    def _record(self, conn: Connection, queue_id: str | None, returned: Returned) -> None:
        now = time.time()
        if returned.kind != "dsn":
            record_event(conn, event_type="autoresponded" if returned.kind == "autoreply" else "unknown",
                         message_id=queue_id, recipient=None, detail=returned.subject or None,
                         webhook_url=self.webhook_url, now=now)
            return
        for status in returned.recipients:
            self._record_recipient(conn, queue_id, status, now)

    def _record_recipient(self, conn: Connection, queue_id: str | None, status: RecipientStatus, now: float) -> None:
        event = _EVENTS.get(status.action, "unknown")
        record_event(conn, event_type=event, message_id=queue_id, recipient=status.recipient,
                     reject_reason="bounced" if event == "bounced" else None, mta_response=status.diagnostic,
                     detail=status.status or None, webhook_url=self.webhook_url, now=now)
        # Anyone may write to a bounce address: a queued message's DSN suppresses only an address the message
        # was sent to, so a forged one cannot suppress an address of its choosing.
        ours = queue_id is None or (event == "bounced" and
                                    mark_bounced(conn, queue_id, status.recipient, reason=status.diagnostic, now=now))
        if status.permanent and ours:
            try:
                suppressions.add(conn, status.recipient, "hard-bounce", source="dsn", message_id=queue_id,
                                 detail=status.diagnostic, now=now,
                                 expires_at=now + self.expiry if self.expiry else None)
            except ValueError:  # the DSN names something that is not an address: nothing to suppress
                log.warning("a DSN names %r, which is not an address; nothing suppressed", status.recipient)
