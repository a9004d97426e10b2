"""Unsubscribing by mail: ``unsubscribe@GATEWAY_BOUNCE_DOMAIN``, the mailto form of a List-Unsubscribe header.

A mail client that does not post RFC 8058's one-click form may write to the header's mailto address instead, with
the subject it names (``unsubscribe <token>``). The token is checked as the one-click route checks it, so a
message can only unsubscribe the recipient its token was made for, whoever sends it; one without a valid token is
refused and suppresses no one.
"""

from __future__ import annotations

import email.policy
import logging
from collections.abc import Sequence
from email.parser import BytesHeaderParser

from mail_gateway.errors import StoreUnavailableError
from mail_gateway.ingress.replies import Reply
from mail_gateway.mail.unsubscribe import MAILTO_LOCAL_PART, TokenSigner
from mail_gateway.store.database import Store
from mail_gateway.suppression.service import unsubscribe

log = logging.getLogger("mail_gateway.ingress")


def _subject_token(data: bytes) -> str:
    """The last word of the subject: ``unsubscribe <token>``, after any ``Re:`` a client put before it."""
    parsed = BytesHeaderParser(policy=email.policy.default).parsebytes(data)  # the header block alone
    subject = str(parsed.get("Subject", "") or "")
    return subject.split()[-1] if subject.split() else ""


class UnsubscribeMailbox:
    def __init__(self, domain: str, store: Store, signer: TokenSigner, webhook_url: str | None) -> None:
        self.address = f"{MAILTO_LOCAL_PART}@{domain}".lower()
        self.store = store
        self.signer = signer
        self.webhook_url = webhook_url

    def rcpt_reply(self, address: str, authenticated: bool = False) -> str | None:
        return "250 2.1.5 OK" if address.lower().rstrip(".") == self.address else None

    def receive(self, rcpt_tos: Sequence[str], data: bytes, peer: str, mail_from: str = "") -> Reply:
        recipient = self.signer.recipient(_subject_token(data))
        if recipient is None:
            log.info("unsubscribe mail from %s without a valid token: nothing done", peer)
            return Reply(550, ("5.7.1 The subject holds no valid unsubscribe token; reply to the message's "
                               "List-Unsubscribe address with its subject unchanged",), "rejected")
        try:
            self.store.write(lambda conn: unsubscribe(conn, recipient, self.webhook_url, via="unsubscribe by mail"))
        except StoreUnavailableError as exc:
            log.error("could not record an unsubscribe from %s: %s", peer, exc)
            return Reply(451, ("4.3.0 The gateway's store is unavailable, try again later",), "error")
        log.info("unsubscribed by mail from %s", peer)
        return Reply(250, ("2.0.0 OK: unsubscribed",), "accepted")
